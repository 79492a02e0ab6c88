"""reports: tables, claim verdicts, split kinds, figures and the CLI on a hand-built run directory."""
import csv
import json
import math
import re
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import stats as scipy_stats

import reports
from reports.__main__ import main
from reports.claims import check_claims, split_kind, split_kinds
from reports.figures import decomposition_grid, metric_by_sampler, sample_grid
from reports.history_figures import training_curves
from reports.rundir import load_run
from reports.stats import decide_interval, decide_p, holm, paired_p, t_interval, welch_interval, welch_p
from svae.preview import high_frequency_share
from tests.report_fixtures import (COMMAND, SVAE_GMM, VAE_GMM, blobs, checkerboard, make_run,
                                   trial_id)

ROOT = Path(__file__).resolve().parents[1]
RENDERED = ("table.md", "table.tex", "table.csv", "claims.md", "report.md")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    run = make_run(tmp_path_factory.mktemp("reports"))
    reports.render(run)
    return run


def markdown_tables(text: str) -> dict:
    """{section heading: {row label: [cells]}} for every Markdown table under a '## ' heading."""
    tables, heading = {}, None
    for line in text.splitlines():
        if line.startswith("## "):
            heading = line[3:]
        elif line.startswith("| ") and not line.startswith("|---"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            tables.setdefault(heading, {})[cells[0]] = cells[1:]
    return tables


def expected_cell(fids: list, asked: int = 5) -> str:
    """The cell text worked out independently of reports.stats."""
    text = f"{statistics.mean(fids):.2f}"
    if len(fids) > 1:
        text += f" ± {statistics.stdev(fids):.2f}"
    return text + (f" (n={len(fids)})" if len(fids) < asked else "")


# ---- tables ----------------------------------------------------------------------------------

def test_gmm_table_means_stds_seed_counts_and_best_marks(run_dir):
    gmm = markdown_tables((run_dir / "table.md").read_text())[
        "GMM sampler (ex-post Gaussian mixture, the paper's)"]
    for dataset, column in (("mnist", 0), ("cifar10", 1)):
        for output in ("x_hat", "x1", "x2", "mix"):
            fids = [f[output] for (d, _), f in SVAE_GMM.items() if d == dataset]
            assert gmm[f"SVAE {output}"][column].strip("*") == expected_cell(fids)
    # Worked by hand: VAE mnist seeds 0-3 = 25, 26, 24, 27 -> mean 25.5, sd sqrt(5/3) = 1.291.
    assert gmm["VAE"] == ["25.50 ± 1.29 (n=4)", "—"]
    assert expected_cell(list(VAE_GMM.values())) == "25.50 ± 1.29 (n=4)"
    # Best per column: SVAE x1 on mnist (mean 18.5), SVAE x_hat on cifar10 (mean 59.67, n=3).
    assert gmm["SVAE x1"][0] == "**18.50 ± 1.12**"
    assert gmm["SVAE x_hat"][1] == "**59.67 ± 1.53 (n=3)**"
    bold = [(label, j) for label, cells in gmm.items() for j, c in enumerate(cells) if c.startswith("**")]
    assert sorted(bold) == [("SVAE x1", 0), ("SVAE x_hat", 1)]
    # Published rows sit apart, never marked best, and only where their protocol is ours: the SVAE
    # authors' 7.47 (another Inception, sampler and output unstated) is listed under the table instead.
    assert "SVAE [asperti/Split-VAE README]" not in gmm
    assert gmm["VAE [Ghosh et al. ICLR 2020 Table 1]"][0] == "17.66"
    table = (run_dir / "table.md").read_text()
    assert ("Published figures NOT beside ours, because their protocol differs: SVAE [asperti/Split-VAE README] "
            "MNIST 7.47 (sampler not stated; output not stated; another Inception network (keras-imagenet))") in table
    # A literature name takes its model's label from the manifest's registry (rae-l2 -> RAE-L2).
    assert gmm["RAE-L2 [Ghosh et al. ICLR 2020 Table 1]"] == ["8.69", "74.16"]


def test_report_and_tables_name_the_network_and_weights_source(run_dir):
    # the fixture's FID rows: pytorch-fid's own file (weights_hash 6726825d)
    source = "pytorch-fid's FID Inception (TF inception-2015-12-05), pytorch-fid's pt_inception-2015-12-05-6726825d.pth"
    report = (run_dir / "report.md").read_text()
    section = report.split("## Networks and weights", 1)[1].split("\n## ", 1)[0]
    assert f"| FID, precision | {source} (sha256 6726825d) | gmm, prior |" in section
    assert f"Protocol: FID on {source}" in (run_dir / "table.md").read_text()


def test_a_metric_has_tables_only_for_the_samplers_it_scored(run_dir):
    # precision was scored at the GMM only (as Inception scores only the claims' outputs in the cpu preset)
    headings = list(markdown_tables((run_dir / "table.md").read_text()))
    assert "precision ↑: GMM sampler (ex-post Gaussian mixture, the paper's)" in headings
    assert not any(h.startswith("precision ↑: prior") for h in headings)
    assert "prior sampler (z ~ N(0, I))" in headings  # FID was scored there (one VAE seed)


def test_single_seed_cell_and_missing_cells(run_dir):
    prior = markdown_tables((run_dir / "table.md").read_text())["prior sampler (z ~ N(0, I))"]
    assert prior["VAE"] == ["**30.00 (n=1)**", "—"]
    assert prior["SVAE x_hat"] == ["—", "—"]
    # Dai & Wipf state neither N nor, for certain, the Inception network: listed apart, not in a column.
    assert "vae-cross-entropy [Dai & Wipf ICLR 2019 Table 1]" not in prior
    assert ("vae-cross-entropy [Dai & Wipf ICLR 2019 Table 1] MNIST 16.6 ± 0.4 (N not stated; Inception network "
            "not stated for certain)") in (run_dir / "table.md").read_text()


def test_csv_is_numbers_for_scripts(run_dir):
    with open(run_dir / "table.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["dataset", "model", "output", "sampler", "metric", "mean", "std", "n", "asked", "best"]
    cell = {(r["dataset"], r["model"], r["output"], r["sampler"], r["metric"]): r for r in rows}
    # Worked by hand: VAE mnist seeds 0-3 = 25, 26, 24, 27 -> mean 25.5, sd sqrt(5/3).
    vae = cell["mnist", "vae", "x_hat", "gmm", "fid"]
    assert float(vae["mean"]) == 25.5 and float(vae["std"]) == pytest.approx(math.sqrt(5 / 3))
    assert (int(vae["n"]), int(vae["asked"]), int(vae["best"])) == (4, 5, 0)
    x1 = [f["x1"] for (d, _), f in SVAE_GMM.items() if d == "mnist"]
    svae = cell["mnist", "svae", "x1", "gmm", "fid"]
    assert float(svae["mean"]) == pytest.approx(statistics.mean(x1)) and svae["best"] == "1"
    assert float(svae["std"]) == pytest.approx(statistics.stdev(x1))
    single = cell["mnist", "vae", "x_hat", "prior", "fid"]  # one seed: no std
    assert (float(single["mean"]), single["std"], single["n"], single["best"]) == (30.0, "", "1", "1")
    missing = cell["cifar10", "vae", "x_hat", "gmm", "fid"]
    assert (missing["mean"], missing["std"], missing["n"], missing["best"]) == ("", "", "0", "0")
    # one best per column of each table: FID (gmm: two datasets, prior: one) and precision (the VAE, higher is better)
    best = sorted((r["sampler"], r["metric"], r["dataset"], r["model"], r["output"]) for r in rows if r["best"] == "1")
    assert best == [("gmm", "fid", "cifar10", "svae", "x_hat"), ("gmm", "fid", "mnist", "svae", "x1"),
                    ("gmm", "precision", "mnist", "vae", "x_hat"), ("prior", "fid", "mnist", "vae", "x_hat")]
    assert not any("[" in r["model"] for r in rows)  # published rows stay in table.md and table.tex


def check_latex(text: str) -> None:
    """Parse the booktabs fragment: braces, rules, cells per row, escaping."""
    assert text.isascii(), "non-ASCII left unescaped"
    unescaped = re.sub(r"\\[{}_&%$#]", "", text)
    depth = 0
    for ch in unescaped:
        depth += {"{": 1, "}": -1}.get(ch, 0)
        assert depth >= 0
    assert depth == 0
    assert "_" not in unescaped
    bodies = re.findall(r"\\begin\{tabular\}\{(lr*)\}(.*?)\\end\{tabular\}", text, re.S)
    assert bodies and text.count(r"\begin{table}") == len(bodies) == text.count(r"\end{table}")
    for spec, body in bodies:
        assert body.count(r"\toprule") == 1 and body.count(r"\bottomrule") == 1
        assert r"\midrule" in body
        rows = [r.strip() for r in body.split(r"\\") if r.strip()]
        for row in rows:
            row = re.sub(r"\\(toprule|midrule|bottomrule)", "", row).strip()
            if not row:
                continue
            span = re.match(r"\\multicolumn\{(\d+)\}", row)
            cells = int(span.group(1)) if span else len(re.split(r"(?<!\\)&", row))
            assert cells == len(spec), row


def test_latex_is_well_formed(run_dir, tmp_path):
    text = (run_dir / "table.tex").read_text()
    check_latex(text)
    assert r"SVAE x\_hat & 21.00 $\pm$ 1.58 & \textbf{59.67 $\pm$ 1.53 (n=3)} \\" in text
    assert r"VAE & 25.50 $\pm$ 1.29 (n=4) & --- \\" in text
    if shutil.which("pdflatex"):
        document = tmp_path / "doc.tex"
        document.write_text("\\documentclass{article}\\usepackage[T1]{fontenc}\\usepackage{booktabs}"
                            f"\\begin{{document}}\n{text}\n\\end{{document}}\n")
        result = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "doc.tex"],
                                cwd=tmp_path, capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stdout[-2000:]


def test_latex_checker_catches_a_broken_table():
    with pytest.raises(AssertionError):
        check_latex("\\begin{table}\\begin{tabular}{lr}\\toprule\nA & B & C \\\\\n\\midrule\n"
                    "\\bottomrule\\end{tabular}\\end{table}")


# ---- statistics and claims -------------------------------------------------------------------

def test_intervals_match_independent_computations():
    diffs = [-2.0, -3.0, -2.5, -3.0, -2.0]
    mean, (low, high) = t_interval(diffs)
    half = 2.7764451051977987 * statistics.stdev(diffs) / math.sqrt(5)  # t(0.975, df=4)
    assert mean == pytest.approx(-2.5) and (low, high) == pytest.approx((-2.5 - half, -2.5 + half))
    a, b = [21.0, 22.0, 19.5, 23.0, 20.0], [25.0, 26.0, 24.0, 27.0]
    diff, interval = welch_interval(a, b)
    expected = scipy_stats.ttest_ind(a, b, equal_var=False).confidence_interval(0.95)
    assert diff == pytest.approx(statistics.mean(a) - statistics.mean(b))
    assert interval == pytest.approx((expected.low, expected.high))
    assert t_interval([1.0]) == (1.0, None) and welch_interval([1.0], []) == (None, None)


def test_the_svae_authors_published_rows_say_their_gmm_saw_the_reference_images(run_dir):
    table = (run_dir / "table.md").read_text()
    assert "SVAE [asperti/Split-VAE README]" in table
    footnote = next(line for line in table.splitlines() if line.startswith("SVAE [asperti/Split-VAE README]:"))
    assert "GMM fitted on the reference images" in footnote


def test_verdict_rule():
    assert decide_interval(5, (-3.0, -1.0)) == "supported"
    assert decide_interval(5, (0.5, 2.0)) == "contradicted"
    assert decide_interval(5, (-1.0, 2.0)) == "no significant difference"
    assert decide_interval(2, (-3.0, -1.0)) == "too few seeds (n = 2 < 3)"
    assert decide_interval(1, None) == "too few seeds (n = 1 < 3)"
    assert decide_p(4, 0.01, -2.0) == "supported" and decide_p(4, 0.01, 2.0) == "contradicted"
    assert decide_p(4, 0.05, -2.0) == "no significant difference"  # p must be below 0.05
    assert decide_p(2, 0.001, -2.0) == "too few seeds (n = 2 < 3)"


def test_holm_matches_a_hand_worked_table():
    # sorted: 0.005 * 4 = 0.02; 0.01 * 3 = 0.03; 0.03 * 2 = 0.06; 0.04 * 1 = 0.04 -> 0.06 (monotone)
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.01, None, 0.04]) == pytest.approx([0.02, None, 0.04])  # None does not count: two tests
    assert holm([0.5, 0.9]) == [1.0, 1.0]  # capped at 1, and never below an earlier step


def test_p_values_match_independent_computations():
    diffs = [-2.0, -3.0, -2.5, -3.0, -2.0]
    t = statistics.mean(diffs) / (statistics.stdev(diffs) / math.sqrt(5))
    assert paired_p(diffs) == pytest.approx(2 * scipy_stats.t.sf(abs(t), 4))
    a, b = [21.0, 22.0, 19.5, 23.0, 20.0], [25.0, 26.0, 24.0, 27.0]
    assert welch_p(a, b) == pytest.approx(scipy_stats.ttest_ind(a, b, equal_var=False).pvalue)
    assert paired_p([1.0]) is None and welch_p([1.0, 2.0], [3.0]) is None


def test_claim_verdicts(run_dir):
    _, verdicts = check_claims(load_run(run_dir))
    assert {(v.dataset, v.claim): v.verdict for v in verdicts} == {
        ("mnist", "decomposition helps"): "supported",  # x1: -2, -3, -2.5, -3, -2; x2: -1, -1, -1, -0.5, -1
        ("mnist", "SVAE beats baselines"): "supported",  # x1 18.5 and x_hat 21 vs VAE 25.5 (n=4)
        ("mnist", "semantic splits help"): "supported",  # seeds 1-4, both components below x_hat
        ("cifar10", "decomposition helps"): "contradicted",  # x1 - x_hat: +2, +3, +2
        ("cifar10", "SVAE beats baselines"): "too few seeds (n = 0 < 3)",  # no VAE seed finished
        ("cifar10", "semantic splits help"): "too few seeds (n = 0 < 3)",  # no sigma maps saved
    }
    text = (run_dir / "claims.md").read_text()
    assert "| min(x1, x2) - x_hat | 0 of 3 | +1.83 |" in text and "no (descriptive)" in text
    assert "no test reaches high confidence" in text and "Holm" in text
    assert "this project's operational definition" in text and "above 0.25 cycles per pixel" in text
    assert text.count("**Verdict:") == 6 and text.count("Why:") == 6


def with_svae_fids(run, fids: dict, seeds):
    """Replace the run's SVAE GMM FID rows on mnist by fids {output: value or [per seed]} for the given seeds."""
    import pandas as pd
    table = pd.read_csv(run / "results.csv")
    replaced = (table["model"] == "svae") & (table["dataset"] == "mnist") & (table["metric"] == "fid")
    keep, template = table[~replaced], table[replaced].iloc[0]
    rows = []
    for i, seed in enumerate(seeds):
        for output, value in fids.items():
            row = template.copy()
            row["trial_id"], row["seed"], row["output"] = trial_id("mnist", "svae", seed), seed, output
            row["value"] = value[i] if isinstance(value, list) else value + 0.1 * seed
            rows.append(row)
    pd.concat([keep, pd.DataFrame(rows)]).to_csv(run / "results.csv", index=False)
    return run


def mnist_verdicts(run) -> dict:
    _, verdicts = check_claims(load_run(run))
    return {v.claim: v.verdict for v in verdicts if v.dataset == "mnist"}


def test_one_component_much_better_and_the_other_much_worse_is_not_decomposition_helping(tmp_path):
    # min(x1, x2) beats x_hat on every seed, yet the paper's claim (both beat x_hat) is contradicted.
    run = with_svae_fids(make_run(tmp_path), {"x_hat": 20.0, "x1": 12.0, "x2": 30.0, "mix": 21.0}, range(5))
    assert mnist_verdicts(run)["decomposition helps"] == "contradicted"
    text, _ = check_claims(load_run(run))
    assert "| min(x1, x2) - x_hat | 5 of 5 | -8.00 |" in text  # shown, deciding nothing


def test_two_seeds_are_too_few_and_the_verdict_says_how_many(tmp_path):
    run = with_svae_fids(make_run(tmp_path), {"x_hat": 20.0, "x1": 12.0, "x2": 13.0, "mix": 12.5}, range(2))
    assert mnist_verdicts(run)["decomposition helps"] == "too few seeds (n = 2 < 3)"


def test_claim_two_compares_outputs_fixed_in_advance_whatever_the_figures(tmp_path):
    # x2 is by far the best output on the tested figures; the comparison still takes x_hat and x1.
    figures = [{"x_hat": 20.0, "x1": 19.0, "x2": 5.0, "mix": 12.0},
               {"x_hat": 20.0, "x1": 30.0, "x2": 29.0, "mix": 29.5}]
    compared = []
    for i, fids in enumerate(figures):
        run = with_svae_fids(make_run(tmp_path / str(i)), fids, range(5))
        text, _ = check_claims(load_run(run))
        mnist = text.split("## cifar10")[0]
        compared.append(sorted(re.findall(r"\| SVAE (\w+) vs VAE \|", mnist)))
    assert compared[0] == compared[1] == ["x1", "x_hat"]


def test_split_kind_from_sigma_spectrum(run_dir):
    assert high_frequency_share(checkerboard()[0, 0]) == pytest.approx(1.0)
    assert high_frequency_share(blobs()[0, 0]) < 0.01
    assert high_frequency_share(np.full((32, 32), 128, np.uint8)) is None
    assert split_kind([high_frequency_share(m[0]) for m in checkerboard()])[0] == "syntactic"
    assert split_kind([high_frequency_share(m[0]) for m in blobs()])[0] == "semantic"
    assert split_kind([0.2, None, 0.4]) == ("semantic", pytest.approx(0.3))  # flat maps (None) are skipped
    assert split_kind([None, None]) == ("constant", None)
    kinds = {seed: kind for seed, (kind, _, _) in split_kinds(load_run(run_dir), "mnist").items()}
    assert kinds == {0: "syntactic", 1: "semantic", 2: "semantic", 3: "semantic", 4: "semantic"}


# ---- figures ---------------------------------------------------------------------------------

def test_figures_written_with_expected_panels(run_dir):
    expected = ["headline", "forest", "fid_mnist", "fid_cifar10", "samples_mnist", "recon_mnist"] \
        + [f"split_mnist_svae_s{s}" for s in range(5)] \
        + [f"{kind}_{d}" for kind in ("epochs", "curves", "objective") for d in ("mnist", "cifar10")]
    for name in expected:
        png, pdf = run_dir / "figures" / f"{name}.png", run_dir / "figures" / f"{name}.pdf"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and pdf.read_bytes()[:5] == b"%PDF-"
    assert len(list((run_dir / "figures").iterdir())) == 2 * len(expected)

    run = load_run(run_dir)
    panels = metric_by_sampler(run, "mnist")
    assert [ax.get_title() for ax in panels.axes] == ["gmm", "prior"]
    assert [t.get_text() for t in panels.axes[0].get_yticklabels()] == [
        "SVAE x_hat", "SVAE x1", "SVAE x2", "SVAE mix", "VAE"]
    dots = [line for line in panels.axes[0].lines if line.get_marker() == "o"]
    assert len(dots) == 5 and len(dots[0].get_xdata()) == 5  # a row of dots per output, one per SVAE x_hat seed
    assert [ax.get_title() for ax in metric_by_sampler(run, "cifar10").axes] == ["gmm"]
    svae = run.preview(trial_id("mnist", "svae", 0))
    grid = decomposition_grid(svae.images["gmm"], svae.sigma_shares["gmm"], "mnist, SVAE seed 0")
    assert [ax.get_title(loc="left") for ax in grid.axes[:4]] == ["sigma (weight of x1)", "x1", "x2", "x_hat"]
    assert grid.axes[4].get_ylabel() == "sigma"  # the colour scale of sigma
    assert "syntactic" in grid.get_suptitle() and "x_hat = sigma * x1 + (1 - sigma) * x2" in grid.get_suptitle()
    assert "High-frequency share:" in grid.get_supxlabel()
    samples = sample_grid(run, "mnist")
    assert [ax.get_title(loc="left") for ax in samples.axes] == [
        "real test images", "SVAE x_hat: gmm sampler, seed 0", "SVAE x1: gmm sampler, seed 0",
        "SVAE x2: gmm sampler, seed 0", "VAE: gmm sampler, seed 0"]
    assert sample_grid(run, "cifar10") is None  # no cifar10 trial saved samples
    curves = training_curves(run, "mnist")
    assert [ax.get_title() for ax in curves.axes] == ["reconstruction MSE (log scale)", "KL", "gamma (log scale)"]
    assert [line.get_label() for line in curves.axes[0].lines] == ["SVAE", "VAE"]
    # integer epoch ticks; the SVAE's and VAE's curves coincide in the fixture: the later one is drawn thinner
    assert all(float(t).is_integer() for t in curves.axes[0].get_xticks())
    first, second = curves.axes[0].lines
    assert second.get_linewidth() < first.get_linewidth() and second.get_marker() != first.get_marker()


# ---- report.md, re-rendering, fd_domain, CLI --------------------------------------------------

def test_report_page(run_dir):
    text = (run_dir / "report.md").read_text()
    # the fixture's reconstruction MSE still falls a third in its last epoch: not levelled off
    assert "| MNIST | decomposition helps | **supported** at this budget | both x1 and x2 beat x_hat: both " \
        "intervals lie below 0. |" in text
    assert "| CIFAR-10 | SVAE beats baselines | **too few seeds (n = 0 < 3)** | against VAE: too few seeds " \
        "(n = 0 < 3) on one side (3 seeds a side needed). |" in text
    assert "| CIFAR-10 | semantic splits help | **too few seeds (n = 0 < 3)** | only 0 semantic SVAE seed(s)" in text
    assert "docs/fidelity.md" in text
    assert "| mnist-vae-s4 | failed | RuntimeError: CUDA out of memory / tried to allocate 2 GiB |" in text
    assert "| GMM sampler (ex-post Gaussian mixture, the paper's) | VAE | cifar10 |" in text
    assert f"```\n{COMMAND}\n```" in text
    assert text.index("## Headline") < text.index("## Claim verdicts") < text.index("## Glossary") \
        < text.index("## Appendix: provenance")
    assert "{" not in text.split("## Appendix")[1]  # key/value tables, no JSON
    for link in re.findall(r"\]\(([^)]+)\)", text):
        assert (run_dir / link).is_file(), link


def test_rerender_gives_identical_bytes(run_dir):
    files = [run_dir / name for name in RENDERED] + sorted((run_dir / "figures").iterdir())
    before = {f: f.read_bytes() for f in files}
    reports.render(run_dir)
    assert all(f.read_bytes() == data for f, data in before.items())


def test_fd_domain_is_never_called_fid(tmp_path):
    run = make_run(tmp_path, backbone_for=lambda dataset: f"domain-{dataset}")
    reports.render(run)
    table = (run / "table.md").read_text()
    assert "NOT FID" in table and "reported" not in table and "Ghosh" not in table
    assert table.startswith("# fd_domain tables")
    assert "NOT FID" in (run / "claims.md").read_text() and "NOT FID" in (run / "report.md").read_text()
    assert "Ghosh" not in (run / "table.tex").read_text()
    assert ",gmm,fd_domain,21.0," in (run / "table.csv").read_text()


def test_run_with_no_results_renders_all_missing(tmp_path):
    run = make_run(tmp_path)
    (run / "results.csv").unlink()
    for status in run.glob("trials/*/status.json"):  # a run whose trials all failed has no results.csv
        status.write_text(json.dumps({**json.loads(status.read_text()), "status": "failed"}))
    reports.render(run)
    gmm = markdown_tables((run / "table.md").read_text())[
        "GMM sampler (ex-post Gaussian mixture, the paper's)"]
    assert gmm["SVAE x_hat"] == ["—", "—"] and gmm["VAE"] == ["—", "—"]
    report = (run / "report.md").read_text()
    assert report.count("| MNIST | ") == 3 + 4  # three verdicts, four headline rows without figures
    assert "| MNIST | — | VAE | gmm | — (n = 0 of 5) | — |" in report
    assert report.count("**too few seeds (n = 0 < 3)**") == 6


def test_cli_on_missing_directory_exits_2_with_one_line(tmp_path):
    result = subprocess.run([sys.executable, "-m", "reports", str(tmp_path / "nope")], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("damage", ["no manifest", "bad json", "no grid", "bad csv column", "bad fid"])
def test_cli_on_malformed_directory_exits_2(tmp_path, capsys, damage):
    run = make_run(tmp_path)
    manifest = run / "manifest.json"
    if damage == "no manifest":
        manifest.unlink()
    elif damage == "bad json":
        manifest.write_text("{not json")
    elif damage == "no grid":
        manifest.write_text(json.dumps({"config": {"datasets": [], "models": []}, "protocol": {}}))
    elif damage == "bad csv column":
        (run / "results.csv").write_text("trial_id,dataset\nx,mnist\n")
    else:
        text = (run / "results.csv").read_text().replace(",20.0,", ",twenty,", 1)
        (run / "results.csv").write_text(text)
    assert main([str(run)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1


def test_two_stage_is_compared_at_its_own_second_stage_sampler(run_dir):
    results = run_dir / "results.csv"
    header = results.read_text().splitlines()[0].split(",")
    extra = []
    for seed in range(3):  # stage-1 GMM samples are poor (40), the second stage is its real generator (15)
        for sampler, fid in (("gmm", 40.0 + seed), ("second-stage", 15.0 + seed)):
            row = {c: "" for c in header}
            row.update(trial_id=f"mnist-two-stage-s{seed}", dataset="mnist", model="two-stage", seed=seed,
                       sampler=sampler, output="x_hat", metric="fid", value=fid, higher_is_better=False,
                       n_samples=10000, extractor="inception-fid")
            extra.append(",".join(str(row[c]) for c in header))
    results.write_text(results.read_text().rstrip("\n") + "\n" + "\n".join(extra) + "\n")
    text, verdicts = check_claims(load_run(run_dir))
    assert {(v.dataset, v.claim): v.verdict for v in verdicts}[("mnist", "SVAE beats baselines")] == "contradicted"
    assert "| SVAE x1 vs two-stage VAE | second-stage | 18.50 (n=5) | 16.00 (n=3) |" in text
    assert "| SVAE x_hat vs VAE | gmm | 21.00 (n=5) | 25.50 (n=4) |" in text


@pytest.mark.parametrize("unmeasured, expected", [
    (0, "It took 4333 s, 54% of the study's 8000 s."),
    (1, "It took 4333 s. 1 session(s) of the study ended without recording a wall time, so the study's recorded "
        "8000 s (manifest.json wall_time_s) leaves part of it out.")])
def test_search_share_of_the_study_only_where_every_session_recorded_its_time(tmp_path, unmeasured, expected):
    from reports.report import report_markdown
    run = make_run(tmp_path)
    manifest = json.loads((run / "manifest.json").read_text())
    manifest.update(wall_time_s=8000.0, sessions_unmeasured=unmeasured,
                    search={"enabled": True, "wall_s": 4333.0, "seeds": [1000, 1001], "epoch_fraction": 0.25,
                            "max_widening": 3, "not_searched": {}, "results": [],
                            "table": {"svae": {"knob": ["beta"], "factors": [0.25, 0.5, 1.0, 2.0, 4.0]}}})
    (run / "manifest.json").write_text(json.dumps(manifest))
    text = report_markdown(load_run(run), [], [], [])  # the text alone: no tables or figures needed
    assert expected in text and text.count("% of the study's") == 1 - unmeasured
