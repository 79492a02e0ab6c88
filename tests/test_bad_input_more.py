"""Bad input, round three: damaged records of a finished run for bench.rescore, data files that are not
files, unusable statistics for bench.fid. Each case: one line naming the problem and the fix, exit
status 2, no traceback, and every file as it was.

The run directory here is made without training: bench.rescore checks every record it reads (rows,
orientation, stages, checkpoints' presence) before it loads a model, so empty checkpoint files do.
"""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import bench.fid
import bench.fs_faults
import bench.rescore
import bench.run
import bench.rundir
from bench.trial import TrialSpec
from svae.lock import run_lock

TRIAL = "synthetic-vae-s0"
SMOKE = ["--preset", "smoke", "--datasets", "synthetic", "--models", "vae", "--seeds", "1",
         "--set", "epochs=1", "train_subset=200", "fid_samples=16", "grid_samples=8"]


def snapshot(folder):
    return {p: p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def assert_one_line(code, err, *needles):
    assert code == 2, err
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    for needle in needles:
        assert needle in err, err


@pytest.fixture
def finished_run(tmp_path):
    """A run directory whose one trial finished, as bench.run leaves it, without its weights' content."""
    run_dir = tmp_path / "run"
    args = bench.run.parse_args([*SMOKE, "--out", str(run_dir)])
    config = bench.run.check_args(args)
    grid = [TrialSpec("synthetic", "vae", 0)]
    manifest = bench.rundir.manifest_for(args, config, grid, str(run_dir / "ray"), 0.0, None, {})
    folder = run_dir / "trials" / TRIAL
    folder.mkdir(parents=True)
    (run_dir / "manifest.json").write_text(json.dumps(manifest))
    (folder / "status.json").write_text(json.dumps({"status": "finished"}))
    row = {"trial_id": TRIAL, "sampler": "prior", "output": "x_hat", "extractor_id": "domain-synthetic-v2:x",
           "n_samples": 16, "metric": "fd_domain", "value": 1.5}
    (folder / "rows.json").write_text(json.dumps([row]))
    (folder / "orientation.json").write_text("null")
    (folder / "metrics.csv").write_text("stage,epoch,loss\nmain,1,100.0\n")
    (folder / "checkpoint-final-main.pt").write_bytes(b"")
    return run_dir


def rescore(run_dir, capsys, *options):
    before = snapshot(run_dir)
    code = bench.rescore.main([str(run_dir), *options])
    assert snapshot(run_dir) == before
    return code, capsys.readouterr().err


def test_the_undamaged_run_passes_the_checks(finished_run):
    """The control for the cases below: their error comes from their damage."""
    job = bench.rescore.plan(bench.rescore.parse_args([str(finished_run)]))
    assert [spec.trial_id for spec, _ in job["trials"]] == [TRIAL]


@pytest.mark.parametrize("file, text, needle", [
    ("orientation.json", "{bad", "orientation.json (JSONDecodeError)"),
    ("orientation.json", "[1, 2, 3]", "is not an orientation"),
    ("orientation.json", '{"mean_sigma": 0.4}', "is not an orientation"),
    ("rows.json", '{"a": 1}', "not a list of rows"),
    ("rows.json", '[{"metric": "fd_domain"}]', "a row lacks"),
    ("metrics.csv", "epoch,loss\n1,100.0\n", "has no stage column"),
])
def test_rescore_refuses_a_damaged_trial_record(finished_run, capsys, file, text, needle):
    (finished_run / "trials" / TRIAL / file).write_text(text)
    code, err = rescore(finished_run, capsys)
    assert_one_line(code, err, needle, "restore")


@pytest.mark.parametrize("damage, needle", [
    (lambda m: m["grid"][0].pop("trial_id"), "grid entry that is not a trial"),
    (lambda m: m["config"]["overrides"].update({"bogus": 1}), "unknown setting 'bogus'"),
    (lambda m: m["config"]["overrides"].update({"epochs": "x"}), "epochs must be a whole number"),
])
def test_rescore_refuses_a_damaged_manifest(finished_run, capsys, damage, needle):
    manifest = json.loads((finished_run / "manifest.json").read_text())
    damage(manifest)
    (finished_run / "manifest.json").write_text(json.dumps(manifest))
    code, err = rescore(finished_run, capsys)
    assert_one_line(code, err, needle)


def test_rescore_refuses_a_fid_cache_that_is_a_file(finished_run, tmp_path, capsys):
    a_file = tmp_path / "notes.txt"
    a_file.write_text("mine")
    for cache, needle in ((a_file, "is a file, not a folder"), (a_file / "cache", "cannot be made")):
        code, err = rescore(finished_run, capsys, "--fid-cache", str(cache))
        assert_one_line(code, err, f"--fid-cache folder {cache}", needle, "pass a --fid-cache folder")
    assert a_file.read_text() == "mine"


def test_rescore_refuses_a_read_only_fid_cache(finished_run, tmp_path):
    """A read-only bind mount in a private mount namespace (root cannot be kept out by permissions)."""
    cache = tmp_path / "cache"
    cache.mkdir()
    mount = f"mount --bind {cache} {cache} && mount -o remount,bind,ro {cache} {cache}"
    probe = subprocess.run(["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", f"{mount} && true"],
                           capture_output=True)
    if probe.returncode != 0:
        pytest.skip("no unshare with user and mount namespaces here")
    before = snapshot(finished_run)
    out = subprocess.run(["unshare", "--user", "--map-root-user", "--mount", "sh", "-c",
                          f'{mount} && exec "$0" -m bench.rescore {finished_run} --fid-cache {cache}', sys.executable],
                         capture_output=True, text=True, timeout=300)
    assert_one_line(out.returncode, out.stderr, f"cannot write to --fid-cache folder {cache}", "read-only")
    assert snapshot(finished_run) == before


def test_rescore_during_a_running_sweep_says_it_is_in_use(finished_run, capsys):
    (finished_run / "trials" / TRIAL / "status.json").write_text(json.dumps({"status": "running"}))
    with run_lock(finished_run, "python -m bench.run"):
        code, err = rescore(finished_run, capsys)
    assert_one_line(code, err, "is in use by", "python -m bench.run")


# ---------------------------------------------------------------- files that are not files

def write_mnist_with_a_fifo(root):
    """MNIST's four IDX files, the training images a named pipe: opening it would wait for a writer."""
    from tests.test_bad_input import write_mnist
    write_mnist(root)
    images = root / "MNIST" / "raw" / "train-images-idx3-ubyte.gz"
    images.unlink()
    os.mkfifo(images)
    return images


def test_a_fifo_as_a_data_file_is_refused_not_waited_on(tmp_path):
    fifo = write_mnist_with_a_fifo(tmp_path / "data")
    out = subprocess.run([sys.executable, "-m", "bench.run", "--preset", "smoke", "--datasets", "mnist", "--models",
                          "vae", "--seeds", "1", "--fid-samples", "10", "--data-root", str(tmp_path / "data"),
                          "--out", str(tmp_path / "run"), "--yes"], capture_output=True, text=True, timeout=120)
    assert_one_line(out.returncode, out.stderr, f"IDX file {fifo} is not a regular file", "put an intact copy")
    assert not (tmp_path / "run").exists()


def test_a_fifo_as_a_fid_input_is_refused_not_waited_on(tmp_path):
    fifo = tmp_path / "images.npy"
    os.mkfifo(fifo)
    stats = tmp_path / "stats.npz"
    np.savez(stats, mu=np.zeros(3), sigma=np.eye(3))
    out = subprocess.run([sys.executable, "-m", "bench.fid", str(fifo), str(stats)], capture_output=True, text=True,
                         timeout=120)
    assert_one_line(out.returncode, out.stderr, f"input {fifo} is not a regular file")


# ---------------------------------------------------------------- bench.fid: statistics and --save-stats

def fid(capsys, *argv):
    with pytest.raises(SystemExit) as exit_:
        bench.fid.main([str(a) for a in argv])
    return exit_.value.code, capsys.readouterr().err


@pytest.mark.parametrize("mu, sigma, needle", [
    (np.array(["a", "b"]), np.array([["a", "b"], ["c", "d"]]), "not numbers"),
    (np.zeros(2), -1e6 * np.eye(2), "an eigenvalue of -1e+06, below 0"),  # a Frechet distance of -2e6
    (np.zeros(2), np.array([[1.0, 2.0], [0.0, 1.0]]), "not symmetric"),
    (np.zeros((2, 1)), np.eye(2), "not a vector and a square matrix"),
])
def test_bench_fid_refuses_statistics_that_are_not_a_mean_and_a_covariance(tmp_path, capsys, mu, sigma, needle):
    bad, good = tmp_path / "bad.npz", tmp_path / "good.npz"
    np.savez(bad, mu=mu, sigma=sigma)
    np.savez(good, mu=np.zeros(2), sigma=np.eye(2))
    for pair in ((bad, good), (good, bad)):
        code, err = fid(capsys, *pair)
        assert_one_line(code, err, f"{bad}", "write", "--save-stats")


def test_bench_fid_takes_a_singular_covariance(tmp_path, capsys):
    """Fewer images than dimensions give a singular covariance: round-off, not damage."""
    features = np.random.default_rng(0).normal(size=(3, 8))
    a, b = tmp_path / "a.npz", tmp_path / "b.npz"
    np.savez(a, mu=features.mean(0), sigma=np.cov(features, rowvar=False))
    np.savez(b, mu=np.zeros(8), sigma=np.eye(8))
    bench.fid.main([str(a), str(b)])
    assert float(capsys.readouterr().out.split()[1]) > 0


@pytest.mark.parametrize("destination, needle", [
    (lambda tmp: tmp, "is a folder; name an .npz file"),
    (lambda tmp: tmp / "notes.txt" / "stats.npz", "the folder of --save-stats"),
])
def test_bench_fid_save_stats_refuses_a_destination_it_cannot_write(tmp_path, capsys, destination, needle):
    stats = tmp_path / "stats.npz"
    np.savez(stats, mu=np.zeros(2), sigma=np.eye(2))
    (tmp_path / "notes.txt").write_text("mine")
    before = snapshot(tmp_path)
    code, err = fid(capsys, stats, destination(tmp_path), "--save-stats")
    assert_one_line(code, err, needle)
    assert snapshot(tmp_path) == before


# ---------------------------------------------------------------- words that name the right fix

def test_a_missing_checkpoint_advises_what_trains_the_trial_again(finished_run, capsys):
    """--resume alone restores nothing for a finished trial: the advice is to delete its folder first."""
    (finished_run / "trials" / TRIAL / "checkpoint-final-main.pt").unlink()
    code, err = rescore(finished_run, capsys)
    assert_one_line(code, err, "missing checkpoint", f"delete {finished_run / 'trials' / TRIAL}", "--resume")


def run_cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "bench.run", *args], capture_output=True, text=True, timeout=300,
                          env={**os.environ, **(env or {})})


def test_ray_address_from_the_environment_is_named_as_such(tmp_path):
    out = run_cli(*SMOKE, "--out", str(tmp_path / "run"), env={"RAY_ADDRESS": "ray://10.0.0.1:10001"})
    assert_one_line(out.returncode, out.stderr, "RAY_ADDRESS=ray://10.0.0.1:10001 (set in the environment)",
                    "needs --storage", "unset RAY_ADDRESS")
    assert "--address" not in out.stderr and not (tmp_path / "run").exists()


@pytest.mark.parametrize("damage, needle", [
    (lambda m: m["config"].pop("settings"), "lacks the sweep's settings or grid"),
    (lambda m: m.update(grid=None), "lacks the sweep's settings or grid"),
    (lambda m: m.update(config="smoke"), "is unreadable"),
])
def test_resume_of_a_damaged_manifest_is_one_line(finished_run, damage, needle):
    manifest = json.loads((finished_run / "manifest.json").read_text())
    damage(manifest)
    (finished_run / "manifest.json").write_text(json.dumps(manifest))
    before = snapshot(finished_run)
    out = run_cli(*SMOKE, "--out", str(finished_run), "--resume")
    assert_one_line(out.returncode, out.stderr, needle)
    assert snapshot(finished_run) == before


@pytest.mark.parametrize("command, argv, needle", [
    ("bench.curve", ["--dataset", "synthetic", "--epochs", "1", "--samples", "16", "--out", "{file}/curve"],
     "--out {file}/curve cannot be made: {file} is a file"),
    ("bench.cost.perf", ["fid", "--n", "10", "--out", "{file}/perf"], "--out {file}/perf cannot be made"),
    ("bench.cost.simulate", ["--work", "{file}/work"], "--work {file}/work cannot be made"),
    ("bench.cost.simulate", ["--work", "{tmp}/work", "--report", "{tmp}"], "--report {tmp} is a folder"),
    ("bench.cost.simulate", ["--work", "{tmp}/work", "--report", "{file}/r.json"], "the folder of --report {file}"),
])
def test_an_output_that_cannot_be_written_is_refused_before_the_work(tmp_path, command, argv, needle):
    a_file = tmp_path / "notes.txt"
    a_file.write_text("mine")
    fill = lambda text: text.format(file=a_file, tmp=tmp_path)  # noqa: E731
    out = subprocess.run([sys.executable, "-m", command, *map(fill, argv)], capture_output=True, text=True,
                         timeout=120)
    assert_one_line(out.returncode, out.stderr, fill(needle))
    assert sorted(tmp_path.iterdir()) == [a_file] and a_file.read_text() == "mine"


@pytest.mark.parametrize("damage", ["missing", "an object"])
def test_resume_with_a_finished_trials_rows_damaged_is_one_line_before_ray(finished_run, damage):
    rows = finished_run / "trials" / TRIAL / "rows.json"
    rows.unlink() if damage == "missing" else rows.write_text('{"a": 1}')
    before = snapshot(finished_run)
    out = run_cli(*SMOKE, "--out", str(finished_run), "--resume")
    assert_one_line(out.returncode, out.stderr, f"its record {rows} is unreadable", f"delete {rows.parent}")
    assert snapshot(finished_run) == before


def test_a_read_only_tmpdir_is_named_as_the_cause(monkeypatch, tmp_path):
    """Ray writes its session under TMPDIR; measured for real (a read-only bind mount as TMPDIR, a tiny
    sweep): one line, exit 2. Here the naming alone, without starting Ray."""
    import errno
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    wrapped = RuntimeError("ray failed")
    wrapped.__cause__ = OSError(errno.EROFS, "Read-only file system", str(tmp_path / "ray" / "session"))
    cause, file = bench.fs_faults.filesystem_fault(wrapped)
    assert cause == f"the file system is read-only in TMPDIR={tmp_path} (set TMPDIR to a writable folder)"
    assert file == str(tmp_path / "ray" / "session")
    elsewhere = OSError(errno.EROFS, "Read-only file system", "/elsewhere/run/results.csv")
    assert bench.fs_faults.filesystem_fault(elsewhere) == ("the file system is read-only", "/elsewhere/run/results.csv")
