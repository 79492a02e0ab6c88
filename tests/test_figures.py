"""Figures that show the answer: titles inside their canvas, axes scaled by the data, the forest
plot's intervals equal to claims.md's, captions for every figure, and report.md's scale and
"at this budget" wording, on the committed study and the hand-built fixture."""
import csv
import itertools
import json
from pathlib import Path

import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg

import reports
from reports.budget import budget_notes, levelling, scale_line
from reports.claims import check_claims
from reports.figures import headline_figure, metric_by_sampler, prdc_scatter, reconstructions, sample_grid
from reports.forest import claim_intervals, forest_plot
from reports.history_figures import epochs_figure, objective_figure, split_outputs_figure, training_curves
from reports.plotting import caption, difference_scale, value_scale
from reports.rundir import load_run
from tests.report_fixtures import make_run, with_rae_beating_everything

STUDY = Path(__file__).resolve().parents[1] / "results" / "fashion-mnist-cpu"


@pytest.fixture(scope="module")
def study():
    return load_run(STUDY)


def drawn_boxes(figure):
    """(title, the title's box, the box around everything drawn: titles, labels, ticks, legends, the canvas),
    in pixels."""
    renderer = FigureCanvasAgg(figure).get_renderer()
    figure.draw(renderer)
    everything = figure.get_tightbbox(renderer).transformed(figure.dpi_scale_trans)
    return figure.get_suptitle(), figure._suptitle.get_window_extent(renderer), everything, figure.bbox


def inside(box, canvas) -> bool:
    return box.x0 >= 0 and box.y0 >= 0 and box.x1 <= canvas.x1 and box.y1 <= canvas.y1


@pytest.mark.parametrize("make", [headline_figure, forest_plot, *(
    lambda r, f=f: f(r, "fashion-mnist") for f in (metric_by_sampler, prdc_scatter, sample_grid, reconstructions,
                                                   epochs_figure, training_curves, objective_figure))])
def test_the_title_and_everything_else_drawn_lie_inside_the_canvas(study, make):
    title, title_box, everything, canvas = drawn_boxes(make(study))
    assert title and inside(title_box, canvas) and inside(everything, canvas), (title_box, everything, canvas)


def test_headline_keeps_its_whole_warning_and_goes_log_for_the_study(study):
    figure = headline_figure(study)
    assert "fd_domain, NOT FID" in figure.get_suptitle()
    ax = figure.axes[0]
    assert ax.get_xscale() == "log"  # SVAE x2 at ~224 beside models at 8-16
    low, high = ax.get_xlim()
    assert low < 8.23 and high > 335  # every seed inside: RAE-L2's best, SVAE x2's worst
    # every model's interval is readable: its mean ± std is written beside its name
    assert [t.get_text().split("\n")[1] for t in ax.get_yticklabels()][:2] == ["8.23 ± 0.60 (n = 5)",
                                                                               "9.84 ± 0.55 (n = 5)"]


MNIST_STUDY = STUDY.parent / "mnist-cpu"


@pytest.mark.parametrize("folder", [STUDY, MNIST_STUDY], ids=lambda p: p.name)
@pytest.mark.parametrize("make", [headline_figure, metric_by_sampler, epochs_figure, split_outputs_figure])
def test_no_two_tick_labels_of_an_axis_overlap(folder, make):
    """On a log axis spanning about a decade (MNIST's fd_domain, 0.25 to 3.5) matplotlib's default labels,
    3x10^-1 beside 4x10^-1, ran into each other."""
    run = load_run(folder)
    figure = make(run) if make is headline_figure else make(run, run.datasets[0])
    if figure is None:  # the Fashion-MNIST study predates scoring during training: no outputs figure
        assert folder == STUDY and make is split_outputs_figure
        return
    renderer = FigureCanvasAgg(figure).get_renderer()
    figure.draw(renderer)
    for ax in figure.axes:
        for axis in (ax.xaxis, ax.yaxis):
            boxes = [tick.label1.get_window_extent(renderer) for tick in axis.get_major_ticks()
                     + axis.get_minor_ticks() if tick.label1.get_visible() and tick.label1.get_text()]
            for a, b in itertools.combinations(boxes, 2):
                assert not a.overlaps(b), (folder.name, make.__name__, [a, b])


def test_scales_follow_the_data():
    assert value_scale([8.2, 9.8, 11.7, 15.7, 224]) == "log"
    assert value_scale([8.2, 9.8, 15.7]) == "linear"
    assert value_scale([-1.0, 50.0]) == "linear"  # a log axis cannot show a non-positive value
    assert difference_scale([-1.2, -0.8, 1.1, 0.9, 50.0, 300.0]) == ("symlog", 1.0)  # median |bound| 1.15
    assert difference_scale([-2.0, -1.0, 1.5, 3.0]) == ("linear", None)


def test_forest_plot_intervals_are_claims_md_intervals(study):
    rows = {r.label: r for r in claim_intervals(study, "fashion-mnist")}
    # Written in the committed claims.md: claim 1's t-intervals (they decide uncorrected) ...
    for label, bounds in (("claim 1: x1 - x_hat", [-5.71, -2.22]), ("claim 1: x2 - x_hat", [72.41, 344.31])):
        assert [round(b, 2) for b in rows[label].deciding] == [round(b, 2) for b in rows[label].uncorrected] == bounds
    # ... and claim 2's Holm-corrected intervals beside its uncorrected Welch ones.
    x1_beta = rows["claim 2: SVAE x1 - beta-VAE"]
    assert [round(b, 2) for b in x1_beta.deciding] == [-0.24, 3.92]  # corrected: contains 0, as its verdict says
    assert [round(b, 2) for b in x1_beta.uncorrected] == [0.14, 3.54]  # uncorrected: clear of 0
    assert x1_beta.verdict == "no significant difference"
    assert [round(b, 2) for b in rows["claim 2: SVAE x1 - two-stage VAE"].deciding] == [-19.01, -9.91]
    assert rows["claim 2: SVAE x_hat - RAE-L2"].verdict == "contradicted"  # the study's manifest records no scope
    assert len(rows) == 2 + 2 * 4
    ax = forest_plot(study).axes[0]
    assert ax.get_xscale() == "symlog" and ax.get_xlim()[1] > 344.31 and ax.get_xlim()[0] < -19.01


def test_forest_rows_agree_with_claims_md_on_every_row_and_keep_rae_beyond_the_claim(tmp_path):
    run = load_run(with_rae_beating_everything(make_run(tmp_path)))
    text = check_claims(run)[0].split("## cifar10")[0]
    rows = claim_intervals(run, "mnist")
    beyond = [r for r in rows if r.label.startswith("beyond claim 2:")]
    assert [r.label for r in beyond] == ["beyond claim 2: SVAE x_hat - RAE-L2", "beyond claim 2: SVAE x1 - RAE-L2"]
    assert not any("RAE" in r.label for r in rows if r not in beyond)
    for row in rows[2:]:  # claim 2's: each table row of claims.md holds the figure's intervals and verdict
        output, baseline = row.label.split(": SVAE ")[1].split(" - ")
        line = next(x for x in text.splitlines() if x.startswith(f"| SVAE {output} vs {baseline} |"))
        cells = [c.strip() for c in line.split("|")]
        assert cells[6] == "[{:+.2f}, {:+.2f}]".format(*row.uncorrected)
        assert cells[7].startswith("[{:+.2f}, {:+.2f}]".format(*row.deciding)) and cells[9] == row.verdict


def test_prdc_scatter_has_a_point_per_seed_per_model(study):
    figure = prdc_scatter(study, "fashion-mnist")
    assert [ax.get_xlabel().split()[0] for ax in figure.axes] == ["recall", "coverage"]
    assert [len(line.get_xdata()) for line in figure.axes[0].lines] == [5] * 5
    assert [line.get_label() for line in figure.axes[0].lines][:2] == ["SVAE (gmm)", "VAE (gmm)"]


def test_epochs_figure_draws_every_seed_and_the_calibration_curve(study):
    figure = epochs_figure(study, "fashion-mnist")
    assert len(figure.axes[0].lines) == 25  # five models x five seeds
    assert "calibration" in figure.axes[1].get_title()


def test_objectives_each_on_their_own_axis(study):
    titles = [ax.get_title() for ax in objective_figure(study, "fashion-mnist").axes]
    assert titles == ["SVAE", "VAE", "beta-VAE", "two-stage VAE (stage1)", "two-stage VAE (stage2)", "RAE-L2"]


def test_levelling_and_scale_of_the_study(study):
    found = levelling(study, "fashion-mnist")
    # calibration/curve.csv: SVAE 15.5 at epoch 3, 12.3 at 4 (still improving); VAE 14.7 then 14.6
    assert not found["svae"].levelled and "calibration" in found["svae"].evidence
    assert found["vae"].levelled
    assert not found["beta-vae"].levelled and "training reconstruction MSE" in found["beta-vae"].evidence
    line = scale_line(study, "fashion-mnist")
    assert "base width 8 (the paper's 64)" in line and "3 epochs (the paper preset's 100)" in line
    assert "fd_domain (a stand-in, NOT FID)" in line and "Fashion-MNIST (not one of the paper's datasets)" in line


def test_a_calibration_that_ends_at_the_runs_last_epoch_decides_by_its_last_step(tmp_path):
    run_dir = make_run(tmp_path)
    manifest = json.loads((run_dir / "manifest.json").read_text())
    manifest["config"]["settings"] = {"mnist": {"epochs": 3}}
    (run_dir / "manifest.json").write_text(json.dumps(manifest))
    (run_dir / "calibration").mkdir()
    curve = {"svae": [30.0, 25.0, 24.0], "vae": [30.0, 25.0, 20.0]}  # last steps: 4% and 20% better
    (run_dir / "calibration" / "curve.csv").write_text("model,epoch,sampler,output,metric,value\n" + "".join(
        f"{model},{epoch},gmm,x_hat,fid,{value}\n" for model, values in curve.items()
        for epoch, value in enumerate(values, 1)))
    found = levelling(load_run(run_dir), "mnist")
    assert found["svae"].levelled and found["svae"].evidence == \
        "SVAE's FID changed by 4% from epoch 2 to 3 in the calibration run"
    assert not found["vae"].levelled and found["vae"].evidence == \
        "VAE's FID still improved by 20% from epoch 2 to 3 in the calibration run"


def test_verdicts_say_at_this_budget_only_where_a_curve_still_improved(tmp_path):
    run_dir = make_run(tmp_path / "falling")  # its reconstruction MSE falls by a third every epoch
    run = load_run(run_dir)
    verdicts = check_claims(run)[1]
    suffixes, lines = budget_notes(run, verdicts)
    assert "had not levelled off" in lines[1]
    assert ("mnist", "decomposition helps") in suffixes  # supported, but on a curve still falling
    assert suffixes == {(v.dataset, v.claim): " at this budget" for v in verdicts
                        if not v.verdict.startswith("too few")}  # too few seeds: not the budget's doing
    flat = make_run(tmp_path / "flat")
    for metrics in flat.glob("trials/*/metrics.csv"):
        rows = list(csv.reader(metrics.open()))
        for row in rows[1:]:
            row[3] = "0.02"  # recon_mse the same every epoch
        with metrics.open("w", newline="") as f:
            csv.writer(f).writerows(rows)
    reports.render(flat)
    report = (flat / "report.md").read_text()
    assert "at this budget |" not in report and "had levelled off" in report
    assert "| MNIST | decomposition helps | **supported** |" in report


def test_every_figure_of_the_study_has_a_caption_in_its_report():
    report = (STUDY / "report.md").read_text()
    for png in sorted((STUDY / "figures").glob("*.png")):
        assert caption(f"figures/{png.name}"), png.name
        assert f"{caption(f'figures/{png.name}')}\n\n  ![{png.stem}]" in report


def with_curves(run_dir, values, metric="fid", swapped_seeds=(1,)):
    """The fixture's trials with their own scores during training: metrics.csv gains <output>_<metric>
    columns, (model, output) -> the value at epochs 1-3 (the same for every seed, plus seed / 100). As a
    trial writes them, x1 and x2 are the decoder's raw components: for the SVAE's swapped_seeds the
    tables' x1 is raw x2 (orientation.json says so), and a raw mix is there too."""
    for metrics in run_dir.glob("trials/mnist-*/metrics.csv"):
        model, seed = metrics.parent.name.split("-")[1], int(metrics.parent.name.rsplit("s", 1)[1])
        rows = list(csv.reader(metrics.open()))
        raw = {o: values[model, o] for m, o in values if m == model}
        if model == "svae":
            swapped = seed in swapped_seeds
            (metrics.parent / "orientation.json").write_text(json.dumps({"swapped": swapped, "mean_sigma": 0.5}))
            if swapped:
                raw["x1"], raw["x2"] = raw["x2"], raw["x1"]
            raw["mix"] = [1000.0] * 3
        rows[0] += [f"{o}_{metric}" for o in raw]
        for row in rows[1:]:
            row += [v[int(row[1]) - 1] + seed / 100 for v in raw.values()]
        with metrics.open("w", newline="") as f:
            csv.writer(f).writerows(rows)
    return load_run(run_dir)


CURVES = {("svae", "x_hat"): [30.0, 25.0, 24.5], ("svae", "x1"): [40.0, 20.0, 18.0],
          ("svae", "x2"): [35.0, 30.0, 29.0], ("vae", "x_hat"): [30.0, 25.0, 20.0]}


def test_the_trials_own_curves_decide_the_levelling_before_the_training_mse(tmp_path):
    # the fixture's reconstruction MSE falls by a third every epoch; the trials' FID says otherwise for the SVAE
    run = with_curves(make_run(tmp_path), CURVES)
    found = levelling(run, "mnist")
    assert found["svae"].levelled and found["svae"].evidence == \
        "SVAE's FID of x_hat changed by 2% from epoch 2 to 3 during training (the trials' own, mean over seeds)"
    assert not found["vae"].levelled and "still improved by 20%" in found["vae"].evidence
    assert "reconstruction MSE" in levelling(load_run(make_run(tmp_path / "plain")), "mnist")["svae"].evidence


def test_the_epochs_figure_draws_the_trials_own_scores_and_the_split_models_outputs(tmp_path):
    run = with_curves(make_run(tmp_path), CURVES)
    figure = epochs_figure(run, "mnist")
    assert figure.axes[0].get_title() == "FID of x_hat by epoch, every seed"
    lines = figure.axes[0].lines
    assert len(lines) == 9 and [line.get_label() for line in lines if not line.get_label().startswith("_")] == \
        ["SVAE", "VAE"]  # a line per finished seed (5 and 4), the model named once
    assert list(lines[0].get_ydata()) == CURVES["svae", "x_hat"]  # seed 0
    outputs = split_outputs_figure(run, "mnist")
    assert [line.get_label() for line in outputs.axes[0].lines] == ["x_hat", "x1", "x2"]
    assert list(outputs.axes[0].lines[1].get_ydata()) == pytest.approx([v + 0.02 for v in CURVES["svae", "x1"]])
    assert "mean over 5 seed(s), min-max shaded" in outputs.get_suptitle()
    assert split_outputs_figure(load_run(make_run(tmp_path / "plain")), "mnist") is None


def test_a_model_scored_in_its_second_stage_only_levels_off_when_its_first_stage_has_too(tmp_path):
    run_dir = make_run(tmp_path)
    for metrics in run_dir.glob("trials/mnist-vae-*/metrics.csv"):  # the VAE stands in for a two-stage model
        rows = list(csv.reader(metrics.open()))
        first = [["stage1", *row[1:], ""] for row in rows[1:]]  # reconstruction MSE falling a third an epoch
        second = [["stage2", *row[1:], value] for row, value in zip(rows[1:], (20.0, 19.9, 19.9))]  # flat
        with metrics.open("w", newline="") as f:
            csv.writer(f).writerows([rows[0] + ["x_hat_fid"], *first, *second])
    level = levelling(load_run(run_dir), "mnist")["vae"]
    assert not level.levelled
    assert "FID of x_hat changed by 0% from epoch 2 to 3" in level.evidence
    assert "and in its first stage, VAE's training reconstruction MSE still improved by 33%" in level.evidence


def test_the_trials_scores_name_x1_and_x2_by_each_seeds_orientation(tmp_path):
    run = with_curves(make_run(tmp_path), CURVES, swapped_seeds=(1, 3))
    for seed in range(5):
        table = run.metrics(f"mnist-svae-s{seed}")
        assert "mix_fid" not in table.columns  # a raw mix of halves cannot be re-oriented
        assert list(table["x1_fid"]) == pytest.approx([v + seed / 100 for v in CURVES["svae", "x1"]]), seed
    (run_dir := tmp_path / "run" / "trials" / "mnist-svae-s2" / "orientation.json").unlink()
    assert not any(c.startswith(("x1_", "x2_")) for c in run.metrics("mnist-svae-s2").columns)  # unknown: left out
    assert run_dir.parent.joinpath("metrics.csv").read_text().count("x1_fid") == 1  # the file is unchanged


def test_a_run_deciding_on_fid_levels_off_on_its_fd_domain_curves(tmp_path):
    run = with_curves(make_run(tmp_path), CURVES, metric="fd_domain")
    assert run.deciding_metric == "fid"
    found = levelling(run, "mnist")
    assert found["svae"].levelled and "SVAE's fd_domain of x_hat changed by 2%" in found["svae"].evidence
    assert epochs_figure(run, "mnist").axes[0].get_title() == "fd_domain of x_hat by epoch, every seed"
