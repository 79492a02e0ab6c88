"""Which data a sweep read: a --data-root is the only place looked at (no silent fallback to
Debian's Fashion-MNIST), the manifest records the files read with size and sha256, relative to
their root, and --resume on other files is refused."""
import gzip
import hashlib
import json
import struct

import pytest

import bench.run
import bench.rundir
from bench.trial import TrialSpec
from svae.data import DEBIAN_FASHION_MNIST, load_images, provenance
from svae.errors import HarnessError

debian = pytest.mark.skipif(not (DEBIAN_FASHION_MNIST / "t10k-images-idx3-ubyte.gz").exists(),
                            reason="Debian's dataset-fashion-mnist is not installed")


def write_idx(folder, n_train=20, n_test=10, fill=0):
    folder.mkdir(parents=True, exist_ok=True)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        images = bytes([0, 0, 8, 3]) + struct.pack(">3I", n, 28, 28) + bytes([fill]) * (n * 784)
        (folder / f"{prefix}-images-idx3-ubyte.gz").write_bytes(gzip.compress(images))
        (folder / f"{prefix}-labels-idx1-ubyte.gz").write_bytes(
            gzip.compress(bytes([0, 0, 8, 1]) + struct.pack(">I", n) + bytes(n)))


@debian
def test_a_data_root_without_fashion_mnist_never_falls_back_to_debians_copy(tmp_path):
    with pytest.raises(HarnessError, match="missing train-images-idx3-ubyte.*drop --data-root"):
        load_images("fashion-mnist", "train", tmp_path)


@debian
def test_without_a_data_root_debians_copy_is_used_and_recorded(tmp_path, monkeypatch):
    monkeypatch.setenv("SVAE_BENCH_DATA", str(tmp_path / "empty"))
    data = load_images("fashion-mnist", "test")
    assert len(data.images) == 10000
    file = DEBIAN_FASHION_MNIST / "t10k-images-idx3-ubyte.gz"
    record = provenance(data)[0]
    assert record == {"root": "system", "path": "t10k-images-idx3-ubyte.gz", "size": file.stat().st_size,
                      "sha256": hashlib.sha256(file.read_bytes()).hexdigest()}


def test_files_are_recorded_relative_to_the_data_root(tmp_path):
    write_idx(tmp_path / "MNIST" / "raw")
    records = provenance(load_images("mnist", "train", tmp_path), tmp_path)
    assert [(r["root"], r["path"]) for r in records] == [
        ("data-root", "MNIST/raw/train-images-idx3-ubyte.gz"), ("data-root", "MNIST/raw/train-labels-idx1-ubyte.gz")]
    file = tmp_path / "MNIST" / "raw" / "train-images-idx3-ubyte.gz"
    assert records[0]["sha256"] == hashlib.sha256(file.read_bytes()).hexdigest()
    assert provenance(load_images("synthetic", "train")) == []  # made in-process: no file


def test_resume_on_other_data_is_refused_before_ray_starts(tmp_path, monkeypatch, capsys):
    def no_ray(_args):
        raise AssertionError("Ray was started")

    monkeypatch.setattr(bench.run, "start_ray", no_ray)
    root, run_dir = tmp_path / "data", tmp_path / "run"
    write_idx(root / "MNIST" / "raw")
    argv = ["--preset", "smoke", "--datasets", "mnist", "--models", "vae", "--seeds", "1", "--fid-samples", "10",
            "--data-root", str(root), "--out", str(run_dir)]
    args = bench.run.parse_args(argv)
    config = bench.run.check_args(args)
    run_dir.mkdir()
    (run_dir / "manifest.json").write_text(json.dumps({  # as the sweep wrote it when it started
        "config": {**{k: config[k] for k in bench.rundir.DEFINING}, "storage": "ray", "settings": {}}, "grid": [],
        "data": bench.run.check_data(args, config["settings"])}))
    write_idx(root / "MNIST" / "raw", fill=7)  # the same file names, other pixels
    moved = tmp_path / "moved"
    root.rename(moved)  # paths may change on resume (they are recorded relative to the root); content not
    assert bench.run.main([*argv[:-4], "--data-root", str(moved), "--out", str(run_dir), "--resume"]) == 2
    err = capsys.readouterr().err
    assert "mnist train data differ from those this sweep started with" in err, err
    assert "MNIST/raw/train-images-idx3-ubyte.gz" in err and err.count("\n") == 1


@debian
def test_rescore_reads_the_data_source_the_manifest_recorded(tmp_path, monkeypatch):
    """A run trained on Debian's Fashion-MNIST (no --data-root, the README's default) is re-scored from
    the same files, their hashes checked; other files of those names are refused (issue 23, finding 7)."""
    import bench.rescore
    monkeypatch.setenv("SVAE_BENCH_DATA", str(tmp_path / "empty"))  # the default root holds nothing
    run_dir = tmp_path / "run"
    argv = ["--preset", "smoke", "--datasets", "fashion-mnist", "--models", "vae", "--seeds", "1",
            "--fid-samples", "10", "--out", str(run_dir)]
    args = bench.run.parse_args(argv)
    config = bench.run.check_args(args)
    data = bench.run.check_data(args, config["settings"])
    assert {r["root"] for splits in data.values() for records in splits.values() for r in records} == {"system"}
    grid = [TrialSpec("fashion-mnist", "vae", 0)]
    trial = run_dir / "trials" / grid[0].trial_id
    trial.mkdir(parents=True)
    (trial / "status.json").write_text(json.dumps({"status": "finished"}))
    (trial / "checkpoint-final-main.pt").write_bytes(b"")  # plan() checks that it is there; nothing loads it
    (trial / "rows.json").write_text("[]")  # plan() checks the records it would extend
    manifest = bench.rundir.manifest_for(args, config, grid, "ray", 0.0, None, data)
    (run_dir / "manifest.json").write_text(json.dumps(manifest))
    job = bench.rescore.plan(bench.rescore.parse_args([str(run_dir)]))
    assert job["evaluation"].system_copy and [spec for spec, _ in job["trials"]] == grid
    manifest["data"]["fashion-mnist"]["test"][0]["sha256"] = "0" * 64  # the run read other files
    (run_dir / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(HarnessError, match="fashion-mnist test data differ .* pass --data-root"):
        bench.rescore.plan(bench.rescore.parse_args([str(run_dir)]))
