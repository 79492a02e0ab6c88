"""Settings checked in one place before any work (issue 23, findings 5, 9, 10): bench.run (its
--dry-run too), bench.rescore and bench.curve refuse a setting that cannot work with one line and exit
status 2, before training; a sweep whose trials trained and then failed on a scoring setting resumes
with the setting corrected. All in this process: no Ray, no training."""
import json
import math
import traceback
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import bench.curve
import bench.rescore
import bench.run
import bench.sweep
from bench.overrides import field_types
from bench.presets import Settings, settings_for
from bench.settings_check import RULES, check_settings, unruled_fields
from svae.errors import HarnessError
from svae.io import atomic_write_json
from tests.test_cli import stub_plan

SMALL = ["--preset", "smoke", "--datasets", "synthetic", "--models", "vae", "--seeds", "1"]


def call(main, argv, capsys):
    """(exit status, stderr) of main(argv); any exception but SystemExit fails the test."""
    try:
        code = main(argv)
    except SystemExit as e:
        code = e.code
    except BaseException:  # noqa: BLE001 - nothing may escape
        pytest.fail(f"traceback from {argv}:\n{traceback.format_exc()}")
    return code, capsys.readouterr().err


def assert_one_error_line(code, err, *needles):
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    for needle in needles:
        assert needle in err, err


@pytest.fixture
def no_work(monkeypatch):
    """bench.run without the probe, Ray or a sweep: a setting must be refused before any of them."""
    def refuse(*args, **kwargs):
        raise AssertionError("work started with a setting that cannot work")
    monkeypatch.setattr(bench.run, "make_plan", refuse)
    monkeypatch.setattr(bench.run, "start_ray", refuse)


# The settings of finding 5: each was accepted and failed only after training (or gave a traceback
# under --dry-run, or was silently accepted)
CANNOT_WORK = [
    ("gmm.covariance=bogus", "gmm.covariance must be one of full, tied, diag, spherical"),
    ("gmm.components=0", "gmm.components must be a whole number from 1"),
    ("fid_backbone=bogus", "fid_backbone must be one of inception, domain"),
    ("model.latent_dim=0", "model.latent_dim must be a whole number from 1"),
    ("fid_samples=1", "fid_samples must be a whole number from 2"),
    ("lr=nan", "lr must be a finite number above 0"),
    ("lr=inf", "lr must be a finite number above 0"),
    ("model.beta=nan", "model.beta must be a finite number at least 0"),
    ("batch_size=0", "batch_size must be a whole number from 2"),
    ("batch_size=1000000000", "batch_size must be a whole number from 2 to 65,536"),
    ("batch_size=1001", "batch_size must be at most the 1,000 training images"),  # synthetic: 1,000
    ("model.backbone.base_width=0", "model.backbone.base_width must be a whole number from 1"),
    ("epochs=0", "epochs must be a whole number from 1"),
    ("epochs=-1", "epochs must be a whole number from 1"),
    ("train_subset=0", "train_subset must be none or a whole number from 1"),
    ("grid_samples=0", "grid_samples must be a whole number from 1"),
    ("gmm.fit_n=5", "gmm.components=10 for synthetic: gmm.components must be at most the 5 latents"),
    ("model.backbone.num_scales=6", "halves synthetic shapes's 32-pixel images below one pixel"),
]


@pytest.mark.parametrize("dry_run", [["--dry-run"], []], ids=["dry-run", "run"])
@pytest.mark.parametrize("override, message", CANNOT_WORK, ids=[c[0] for c in CANNOT_WORK])
def test_bench_run_refuses_a_setting_that_cannot_work_before_any_work(override, message, dry_run, tmp_path,
                                                                      capsys, no_work):
    code, err = call(bench.run.main, [*SMALL, "--out", str(tmp_path / "run"), *dry_run, "--set", override], capsys)
    assert_one_error_line(code, err, message, "change it with --set ")
    assert not (tmp_path / "run").exists()


def test_every_settings_field_has_a_rule_and_every_preset_passes():
    assert unruled_fields() == []
    for preset in ("paper", "smoke", "cpu"):
        for dataset in ("mnist", "fashion-mnist", "cifar10", "celeba", "synthetic"):
            check_settings(settings_for(preset, dataset), dataset)


def test_the_search_choices_pass_only_for_a_field_of_their_models_knob():
    """Settings.tuned (bench/search.py with_choices) is checked like every field: bench.rescore checks the
    settings after the search's choices are in place."""
    base = settings_for("smoke", "mnist")
    check_settings(replace(base, tuned=(("rae", "rae_penalty_scale", 0.5), ("svae", "beta", 2.0))), "mnist")
    for tuned in ((("rae", "beta", 0.5),), (("two-stage", "beta", 1.0),), (("vae", "beta", math.nan),),
                  (("vae", "beta"),), "beta"):
        with pytest.raises(HarnessError, match="setting tuned=.* tuned must be a list of"):
            check_settings(replace(base, tuned=tuned), "mnist")


def test_did_you_mean_for_a_misspelled_key_and_name(tmp_path, capsys, no_work):
    code, err = call(bench.run.main, [*SMALL, "--out", str(tmp_path / "r"), "--set", "gmm.componets=5"], capsys)
    assert_one_error_line(code, err, "--set gmm.componets: no such setting (did you mean 'gmm.components'?)")
    code, err = call(bench.run.main, [*SMALL, "--out", str(tmp_path / "r"), "--preset", "smok"], capsys)
    assert_one_error_line(code, err, "unknown preset 'smok' (did you mean 'smoke'?)")


# ---------------------------------------------------------------- the property

TEXT_VALUES = st.one_of(st.sampled_from(["nan", "inf", "-inf", "-1", "0", "1", "2", "1e9", "1e-300", "true",
                                         "none", "bogus", "", "full", "test", "domain", "10000000000000000000"]),
                        st.integers(-10**12, 10**12).map(str),
                        st.floats(allow_nan=True, allow_infinity=True).map(repr),
                        st.text(max_size=8))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(pairs=st.lists(st.tuples(st.sampled_from(sorted(field_types(Settings)) + ["epcohs", "model"]), TEXT_VALUES),
                      max_size=3))
def test_random_overrides_pass_or_fail_with_one_line_and_exit_2(pairs, tmp_path, capsys, monkeypatch):
    """bench.run --dry-run with random --set values: exit 0 (the plan, stubbed) or one error line and exit 2."""
    monkeypatch.setattr(bench.run, "print_plan", lambda args, config, grid: None)
    overrides = [f"{key}={value}" for key, value in pairs]
    code, err = call(bench.run.main, [*SMALL, "--out", str(tmp_path / "r"), "--dry-run", "--set", *overrides]
                     if overrides else [*SMALL, "--out", str(tmp_path / "r"), "--dry-run"], capsys)
    if code != 0:
        assert_one_error_line(code, err)


@settings(max_examples=300, deadline=None)
@given(key=st.sampled_from(sorted(RULES)),
       value=st.one_of(st.none(), st.booleans(), st.integers(-10**10, 10**10), st.floats(), st.text(max_size=6),
                       st.lists(st.sampled_from(["fid", "kid", "pr", "is"]), max_size=3).map(tuple)),
       dataset=st.sampled_from(["mnist", "celeba", "synthetic"]))
def test_the_validator_on_any_value_passes_or_names_the_setting(key, value, dataset):
    """check_settings on any value of any field: it passes (and then the value is in range) or raises a
    one-line HarnessError naming the setting; never another exception."""
    from bench.overrides import apply_overrides
    s = apply_overrides(settings_for("smoke", dataset), {key: value})
    try:
        check_settings(s, dataset)
    except HarnessError as e:
        assert "\n" not in str(e) and str(e).startswith("setting ") and "change it with --set" in str(e), str(e)
        return
    if isinstance(value, float):
        assert math.isfinite(value)
    if isinstance(value, int) and not isinstance(value, bool) and key in ("epochs", "batch_size", "fid_samples"):
        assert value >= 1


# ---------------------------------------------------------------- bench.curve and bench.rescore

def test_bench_curve_checks_its_numbers_before_it_trains(tmp_path, capsys, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("trained")
    monkeypatch.setattr(bench.curve, "curve", refuse)
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    base = ["--dataset", "synthetic", "--preset", "smoke", "--epochs", "1", "--models", "vae"]
    cases = [
        (["--samples", "20000", "--out", str(tmp_path / "c")],  # the held-out sixth of 1,000 training images
         "--samples 20000 is larger than synthetic's validation images (166)"),
        (["--samples", "20000", "--reference", "test", "--out", str(tmp_path / "c")],
         "--samples 20000 is larger than synthetic's test images (500)"),
        (["--seed", "-1", "--out", str(tmp_path / "c")], "--seed 0 or more"),
        (["--out", str(a_file)], f"--out {a_file} is a file"),
        (["--set", "lr=nan", "--out", str(tmp_path / "c")], "lr must be a finite number"),
        (["--set", "gmm.covariance=bogus", "--out", str(tmp_path / "c")], "gmm.covariance must be one of"),
    ]
    for options, needle in cases:
        code, err = call(bench.curve.main, [*base, *options], capsys)
        assert_one_error_line(code, err, needle)
    assert not (tmp_path / "c").exists()


@pytest.fixture
def trained_run(tmp_path, monkeypatch):
    """A run directory as bench.run leaves it after its trials trained and failed while scoring (no Ray:
    the sweep is stubbed, each trial's status written as a failed trial's)."""
    monkeypatch.setattr(bench.run, "make_plan", stub_plan(1.0))
    monkeypatch.setattr(bench.run, "start_ray", lambda args: {d: 0.0 for d in args.datasets})  # no GPU
    monkeypatch.setattr(bench.run, "finish", lambda run_dir, grid, trackers, render: 1)
    sweeps = []

    def run_sweep(plan):
        sweeps.append(plan)
        for spec in plan.grid:
            atomic_write_json(plan.run_dir / "trials" / spec.trial_id / "status.json",
                              {"status": "failed", "error": "ValueError: the GMM could not be fitted"})
    monkeypatch.setattr(bench.sweep, "run_sweep", run_sweep)
    run_dir = tmp_path / "run"
    args = [*SMALL, "--out", str(run_dir), "--set", "gmm.components=10"]
    assert bench.run.main(args) == 1
    return run_dir, sweeps


def test_a_scoring_setting_corrected_on_resume_resumes_the_trained_sweep(trained_run, capsys):
    run_dir, sweeps = trained_run
    argv = [*SMALL, "--out", str(run_dir), "--set", "gmm.components=5", "--resume"]
    assert bench.run.main(argv) == 1, capsys.readouterr().err
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["config"]["overrides"] == {"gmm.components": 5}
    assert manifest["config"]["settings"]["synthetic"]["gmm"]["components"] == 5
    assert manifest["protocol"]["samplers"]["gmm"]["components"] == 5
    assert len(manifest["sessions"]) == 2
    resumed = sweeps[-1]
    assert resumed.resume and resumed.settings["synthetic"].gmm.components == 5


def test_a_training_setting_or_a_finished_trial_still_refuses_the_resume(trained_run, capsys):
    run_dir, _ = trained_run
    before = (run_dir / "manifest.json").read_bytes()
    capsys.readouterr()
    code, err = call(bench.run.main, [*SMALL, "--out", str(run_dir), "--set", "gmm.components=10", "epochs=2",
                                      "--resume"], capsys)
    assert_one_error_line(code, err, "holds a different sweep")
    code, err = call(bench.run.main, [*SMALL, "--out", str(run_dir), "--set", "gmm.components=5"], capsys)
    assert_one_error_line(code, err, "holds a different sweep")  # a correction needs --resume
    atomic_write_json(run_dir / "trials" / "synthetic-vae-s0" / "status.json", {"status": "finished"})
    code, err = call(bench.run.main, [*SMALL, "--out", str(run_dir), "--set", "gmm.components=5", "--resume"],
                     capsys)
    assert_one_error_line(code, err, "1 trials (first: synthetic-vae-s0) finished with the recorded overrides",
                          "python -m bench.rescore")
    assert (run_dir / "manifest.json").read_bytes() == before


@pytest.mark.parametrize("damage, needle", [
    (lambda m: m["config"]["overrides"].update({"gmm.componets": 5}), "unknown setting 'gmm.componets' in the run's"),
    (lambda m: m["config"]["overrides"].update({"lr": float("nan")}), "setting lr=nan for synthetic"),
    (lambda m: m["grid"][0].pop("trial_id"), "has a grid entry that is not a trial of known names"),
    (lambda m: m.update(config="a string"), "has no config or grid"),
], ids=["unknown-override", "nan-override", "grid-without-trial-id", "config-a-string"])
def test_bench_rescore_refuses_a_damaged_manifest_with_one_line(trained_run, damage, needle, capsys):
    run_dir, _ = trained_run
    path = run_dir / "manifest.json"
    manifest = json.loads(path.read_text())
    damage(manifest)
    path.write_text(json.dumps(manifest))
    capsys.readouterr()
    code, err = call(bench.rescore.main, [str(run_dir)], capsys)
    assert_one_error_line(code, err, needle)


def test_bench_rescore_metrics_csv_without_its_stage_column(trained_run, capsys):
    run_dir, _ = trained_run
    folder = run_dir / "trials" / "synthetic-vae-s0"
    atomic_write_json(folder / "status.json", {"status": "finished"})
    (folder / "metrics.csv").write_text("epoch,loss\n1,0.5\n")
    code, err = call(bench.rescore.main, [str(run_dir)], capsys)
    assert_one_error_line(code, err, "metrics.csv has no stage column")


# ---------------------------------------------------------------- findings 9 and 10: the cost tools' numbers

def _perf_main(argv):
    import bench.cost.perf
    return bench.cost.perf.main(argv)


def _simulate_main(argv):
    import bench.cost.simulate
    return bench.cost.simulate.main(argv)


@pytest.mark.parametrize("main, argv, needle", [
    (_perf_main, ["fid", "--n", "0"], "--n must be from 1"),
    (_perf_main, ["fid", "--n", "-5"], "--n must be from 1"),
    (_perf_main, ["train", "--size", "0"], "--size must be 16, 32, 64 or 128"),
    (_perf_main, ["fid", "--device", "bogus"], "--device bogus is not a device"),
    (_perf_main, ["fid", "--out", "pyproject.toml"], "--out pyproject.toml is a file"),
    (_simulate_main, ["--work", "w", "--seeds", "0"], "--seeds must be from 1"),
    (_simulate_main, ["--work", "w", "--gpus-per-node", "0"], "--gpus-per-node from 1"),
    (_simulate_main, ["--work", "w", "--trial-seconds", "nan"], "--trial-seconds a finite number above 0"),
    (_simulate_main, ["--work", "w", "--trial-seconds", "-1"], "--trial-seconds a finite number above 0"),
    (_simulate_main, ["--work", "w", "--checkpoint-bytes", "-1"], "--checkpoint-bytes must be from 0"),
    (_simulate_main, ["--work", "pyproject.toml"], "--work pyproject.toml is a file"),
    (bench.run.main, ["--seeds", "1000000000", "--yes", "--dry-run"], "the grid has 15,000,000,000 trials"),
], ids=lambda v: " ".join(v) if isinstance(v, list) else None)
def test_the_cost_tools_check_their_numbers_before_they_allocate(main, argv, needle, capsys, monkeypatch):
    monkeypatch.chdir(Path(__file__).resolve().parent.parent)
    code, err = call(main, argv, capsys)
    assert_one_error_line(code, err, needle)
    assert not Path("w").exists()
