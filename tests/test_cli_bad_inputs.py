"""Every command line on a generated set of bad inputs: one `error:` line and exit status 2, never a
traceback. The commands run in this process (their main functions, as `python -m` calls them), so
the whole set takes seconds; a few cases that need a fresh process run as real subprocesses."""
import json
import os
import pickle
import signal
import subprocess
import sys
import time
import traceback
from pathlib import Path

import numpy as np
import pytest
import torch

import bench.fid
import bench.run
import reports.__main__
from svae.preview import preview_of, write_preview
from tests.fid_helpers import inception_weights  # noqa: F401 (a fixture)
from tests.report_fixtures import make_run

ROOT = Path(__file__).resolve().parent.parent
SMALL = ["--preset", "smoke", "--datasets", "synthetic", "--fid-samples", "200", "--seeds", "1", "--models", "vae"]


def call(main, argv, capsys):
    """(exit status, stderr) of main(argv); a traceback (any exception but SystemExit) fails the test."""
    try:
        code = main(argv)
    except SystemExit as e:
        code = e.code
    except BaseException:  # noqa: B902 - that is the point: nothing may escape
        pytest.fail(f"traceback from {argv}:\n{traceback.format_exc()}")
    return code, capsys.readouterr().err


def assert_one_error_line(code, err, *needles):
    assert code == 2, err
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    for needle in needles:
        assert needle in err, err


# ---------------------------------------------------------------- bench.fid

def fid_inputs(folder):
    """name -> (argument, words the error must hold), one generated file per case."""
    folder.mkdir()
    good = folder / "good.npz"
    np.savez(good, images=np.zeros((4, 3, 32, 32), np.uint8))
    cases = {}

    def case(name, needle, write):
        path = folder / name
        write(path)
        cases[name] = (str(path), needle)

    case("not-an-image", "not a readable image", lambda p: (p.mkdir(), (p / "a.png").write_text("text, not PNG")))
    case("truncated-png", "not a readable image",
         lambda p: (p.mkdir(), (p / "a.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 20)))
    case("empty-folder", "no image files", lambda p: p.mkdir())
    case("object.npy", "cannot read", lambda p: np.save(p, np.array([{"a": 1}, None], dtype=object)))
    case("object.npz", "cannot read", lambda p: np.savez(p, images=np.array([[1], "x"], dtype=object)))
    case("strings.npy", "not images", lambda p: np.save(p, np.array(["a", "b"])))
    case("complex.npy", "not images", lambda p: np.save(p, np.zeros((2, 3, 8, 8), np.complex64)))
    case("vector.npy", "N x C x H x W", lambda p: np.save(p, np.zeros(10, np.uint8)))
    case("one-image.npy", "at least 2 images", lambda p: np.save(p, np.zeros((1, 3, 32, 32), np.uint8)))
    case("out-of-range.npy", "floats in [0, 1]", lambda p: np.save(p, np.full((2, 3, 32, 32), 7.0, np.float32)))
    case("nan.npy", "floats in [0, 1]", lambda p: np.save(p, np.full((2, 3, 32, 32), np.nan, np.float32)))
    case("empty.npz", "holds arrays none", lambda p: np.savez(p))
    case("two-arrays.npz", "pick one", lambda p: np.savez(p, a=np.zeros(2), b=np.zeros(2)))
    case("garbage.npz", "cannot read", lambda p: p.write_bytes(b"PK\x03\x04 not a zip"))
    case("pickle.npz", "cannot read", lambda p: p.write_bytes(pickle.dumps({"mu": 1})))
    case("zero-bytes.npy", "cannot read", lambda p: p.write_bytes(b""))
    case("bad-stats.npz", "statistics do not match",
         lambda p: np.savez(p, mu=np.zeros(3), sigma=np.eye(3)))
    cases["missing"] = (str(folder / "nowhere.npz"), "cannot read")
    cases["no-such-name"] = (f"{good}:nope", "has no array 'nope'")
    return good, cases


@pytest.fixture(scope="module")
def fid_files(tmp_path_factory):
    return fid_inputs(tmp_path_factory.mktemp("fid") / "inputs")


def test_bench_fid_bad_files(fid_files, inception_weights, capsys, monkeypatch):  # noqa: F811
    good, cases = fid_files
    scorer = bench.fid.Scorer(weights_path=inception_weights, device="cpu")
    monkeypatch.setattr(bench.fid, "Scorer", lambda **_: scorer)  # built once: the files are under test
    for path, needle in cases.values():
        code, err = call(bench.fid.main, [path, str(good), "--weights", str(inception_weights), "--device", "cpu"],
                         capsys)
        assert_one_error_line(code, err, needle)


@pytest.mark.parametrize("options, needle", [
    (["--batch-size", "0"], "--batch-size must be at least 1"),
    (["--batch-size", "-5"], "--batch-size must be at least 1"),
    (["--device", "cuda:7" if torch.cuda.is_available() else "cuda"], "is not available here"),
    (["--device", "gpu"], "is not a device"),
    (["--device", "meta"], "not supported"),
])
def test_bench_fid_bad_options(fid_files, inception_weights, capsys, options, needle):  # noqa: F811
    good, _ = fid_files
    code, err = call(bench.fid.main, [str(good), str(good), "--weights", str(inception_weights), *options], capsys)
    assert_one_error_line(code, err, needle)


def test_bench_fid_bad_weights(fid_files, tmp_path, capsys):
    good, _ = fid_files
    for weights, needle in ((tmp_path, "FID weights file"), (good, "cannot read FID weights")):
        code, err = call(bench.fid.main, [str(good), str(good), "--weights", str(weights)], capsys)
        assert_one_error_line(code, err, needle)


# ---------------------------------------------------------------- bench.run (before Ray starts)

@pytest.fixture
def no_ray(monkeypatch):
    def start_ray(_args):
        raise AssertionError("Ray was started")
    monkeypatch.setattr(bench.run, "start_ray", start_ray)


def test_bench_run_bad_arguments(tmp_path, capsys, no_ray):
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    (tmp_path / "empty-root").mkdir()
    cases = [
        (["--cpus-per-trial", "nan"], "--cpus-per-trial must be positive"),
        (["--cpus-per-trial", "inf"], "--cpus-per-trial must be positive"),
        (["--gpus-per-trial", "-1"], "--gpus-per-trial must be finite and not negative"),
        (["--gpus-per-trial", "nan"], "--gpus-per-trial must be finite"),
        (["--max-concurrent", "0"], "--max-concurrent must be at least 1"),
        (["--fid-samples", "1"], "--fid-samples must be at least 2"),
        (["--seeds", "100000"], "more than 1000", "--yes"),  # stdin is not a terminal here: refused
        (["--out", str(a_file / "run")], "cannot write to run directory"),
        (["--datasets", "mnist", "--data-root", str(a_file)], "missing train-images-idx3-ubyte"),
        (["--datasets", "cifar10", "--data-root", str(tmp_path / "empty-root")], "missing CIFAR-10 files"),
        (["--datasets", "fashion-mnist", "--data-root", str(tmp_path / "empty-root")],
         "missing train-images-idx3-ubyte", "drop --data-root"),  # never Debian's copy behind the user's back
        (["--fid-backbone", "inception", "--fid-weights", str(tmp_path)], "FID weights file"),
        (["--fid-backbone", "inception", "--fid-weights", str(a_file)], "cannot read FID weights"),
        (["--address", "127.0.0.1:notaport", "--storage", str(tmp_path)], "not HOST:PORT"),
        (["--address", "ray://10.0.0.1:10001", "--storage", str(tmp_path)], "is Ray Client",
         "--address 10.0.0.1:6379"),
        (["--gpus-per-trial", "synthetic=x"], "'x' is not a number"),
        (["--gpus-per-trial", "mnist=1", "0"], "mnist is not among --datasets (synthetic)"),
    ]
    for i, (options, *needles) in enumerate(cases):
        code, err = call(bench.run.main, [*SMALL, "--out", str(tmp_path / f"run{i}"), *options], capsys)
        assert_one_error_line(code, err, *needles)


def test_bench_run_address_where_nothing_answers(tmp_path):
    import socket
    with socket.socket() as s:  # a port that was free a moment ago: nothing listens there
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = subprocess.run([sys.executable, "-m", "bench.run", *SMALL, "--out", str(tmp_path / "run"),
                          "--address", f"127.0.0.1:{port}", "--storage", str(tmp_path / "storage")],
                         capture_output=True, text=True, timeout=120)
    assert_one_error_line(out.returncode, out.stderr, f"nothing answers at --address 127.0.0.1:{port}")
    assert not (tmp_path / "run" / "manifest.json").exists()


def test_bench_run_trial_larger_than_any_node(tmp_path):
    out = subprocess.run([sys.executable, "-m", "bench.run", *SMALL, "--out", str(tmp_path / "run"),
                          "--cpus-per-trial", "4096"], capture_output=True, text=True, timeout=300)
    assert_one_error_line(out.returncode, out.stderr, "no node of the cluster has 4096 CPUs",
                          "lower --cpus-per-trial")
    assert not (tmp_path / "run" / "manifest.json").exists()


def test_bench_run_confirms_a_huge_grid_at_a_terminal(tmp_path):
    import os
    import pty
    leader, follower = pty.openpty()
    process = subprocess.Popen([sys.executable, "-m", "bench.run", *SMALL, "--seeds", "1001",
                                "--out", str(tmp_path / "run")], stdin=follower, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    os.close(follower)
    os.write(leader, b"n\n")
    out, err = process.communicate(timeout=120)
    os.close(leader)
    assert "start them all? [y/N]" in out
    assert_one_error_line(process.returncode, err, "not started: the grid has 1001 trials")
    assert not (tmp_path / "run").exists()


# ---------------------------------------------------------------- reports

def torn_preview(run):
    trial = run / "trials" / "mnist-vae-s0"
    write_preview(trial, preview_of({"gmm": {"x_hat": np.zeros((2, 1, 4, 4), np.uint8)}}))
    (trial / "preview" / "gmm.png").write_bytes(b"\x89PNG torn")


def test_reports_bad_run_directories(tmp_path, capsys):
    def damaged(name, damage):
        run = make_run(tmp_path / name)
        damage(run)
        return run

    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    cases = [
        (a_file, "does not exist"),
        (damaged("manifest-list", lambda r: (r / "manifest.json").write_text("[1, 2]")), "lacks config"),
        (damaged("manifest-binary", lambda r: (r / "manifest.json").write_bytes(b"\xff\xfe\x00")), "not valid JSON"),
        (damaged("results-binary", lambda r: (r / "results.csv").write_bytes(b"\xff\xfe\x00\x01" * 50)),
         "results.csv"),
        (damaged("status-garbage", lambda r: (r / "trials" / "mnist-svae-s0" / "status.json").write_text("{")),
         "no finished record"),
        (damaged("rows-not-a-list", lambda r: (r / "trials" / "mnist-svae-s0" / "rows.json").write_text(
            json.dumps({"fid": 1}))), "mnist-svae-s0"),
        (damaged("samples-garbage", lambda r: (r / "trials" / "mnist-svae-s0" / "samples" / "gmm.npz").write_bytes(
            b"PK\x03\x04 torn")), "not a readable .npz"),
        (damaged("preview-torn", torn_preview), "is not a readable preview"),
        (damaged("metrics-garbage", lambda r: (r / "trials" / "mnist-svae-s0" / "metrics.csv").write_bytes(
            b"\x00\xff" * 10)), "metrics.csv"),
    ]
    for run, needle in cases:
        code, err = call(reports.__main__.main, [str(run)], capsys)
        assert_one_error_line(code, err, needle)


# ---------------------------------------------------------------- Ctrl-C while a command imports

@pytest.mark.parametrize("command", [["bench.run", "--dry-run"], ["bench.rescore", "no-such-run"],
                                     ["bench.fid", "a.npz", "b.npz"], ["reports", "no-such-run"],
                                     ["reports.publish", "no-such-run", "dest"], ["bench.cost.projection"],
                                     ["bench.curve", "--epochs", "1", "--out", "curve"]])
def test_ctrl_c_while_the_modules_load_is_one_line(command, tmp_path):
    """SIGINT as soon as numpy is mapped into the process (each command imports it after its first
    statement has set up Ctrl-C, and before torch, pandas or Ray, which take seconds here): one line
    and status 130, no traceback. Were the imports already done, the command's own error line (exit 2)
    or its own Ctrl-C handling must still be one line."""
    process = subprocess.Popen([sys.executable, "-m", *command], cwd=tmp_path, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    maps, deadline = Path(f"/proc/{process.pid}/maps"), time.time() + 60
    while process.poll() is None and time.time() < deadline and "numpy" not in maps.read_text():
        time.sleep(0.01)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert "Traceback" not in err and err.count("\n") == 1, err
    expected = 130 if err.startswith("interrupted") else 2
    assert process.returncode == expected and err.startswith(("interrupted", "error: ")), (process.returncode, err)
