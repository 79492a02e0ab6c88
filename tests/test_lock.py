"""One process per run directory: a second holder is refused at once, naming the first; a lock left
by a dead process on this host is taken over; one left on another host is refused until deleted."""
import json
import os
import signal
import socket
import subprocess
import sys

import pytest

from svae.errors import HarnessError
from svae.lock import LOCK_FILE, run_lock
from tests.report_fixtures import make_run

HOLD = ("import sys, time\n"
        "from svae.lock import run_lock\n"
        "with run_lock(sys.argv[1], 'python -m bench.run'):\n"
        "    print('held', flush=True)\n"
        "    time.sleep(600)\n")


@pytest.fixture
def holder(tmp_path):
    """A second process holding the lock of a run directory (a rendered fixture run)."""
    run = make_run(tmp_path)
    process = subprocess.Popen([sys.executable, "-c", HOLD, str(run)], stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline().strip() == "held"
    yield run, process
    process.kill()
    process.wait()


def snapshot(folder):
    return {p: p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file() and p.name != LOCK_FILE}


def test_reports_refuse_a_locked_run_directory_naming_the_holder(holder):
    run, process = holder
    before = snapshot(run)
    out = subprocess.run([sys.executable, "-m", "reports", str(run)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and out.stderr.count("\n") == 1 and out.stderr.startswith("error: "), out.stderr
    assert f"in use by pid {process.pid} on host {socket.gethostname()}" in out.stderr
    assert "python -m bench.run" in out.stderr
    assert snapshot(run) == before  # nothing rendered


def test_a_second_sweep_on_a_locked_run_directory_is_refused(holder):
    run, process = holder
    manifest = json.loads((run / "manifest.json").read_text())
    manifest["config"].update(seeds=1, preset="smoke", datasets=["synthetic"], models=["vae"], fid_samples=200,
                              fid_backbone=None, storage="ray")
    (run / "manifest.json").write_text(json.dumps(manifest))
    before = snapshot(run)
    out = subprocess.run([sys.executable, "-m", "bench.run", "--preset", "smoke", "--datasets", "synthetic",
                          "--models", "vae", "--seeds", "1", "--fid-samples", "200", "--out", str(run), "--resume"],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 2 and out.stderr.count("\n") == 1, out.stderr
    assert f"in use by pid {process.pid} on host {socket.gethostname()}" in out.stderr
    assert snapshot(run) == before


def test_a_killed_holders_lock_is_taken_over(holder, capsys):
    run, process = holder
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert json.loads((run / LOCK_FILE).read_text())["pid"] == process.pid  # left behind by the dead holder
    with run_lock(run, "test"):
        assert json.loads((run / LOCK_FILE).read_text())["pid"] == os.getpid()
    assert f"taking over the lock of pid {process.pid}" in capsys.readouterr().err
    assert (run / LOCK_FILE).read_text() == ""  # let go: free for the next holder, quietly


def test_a_lock_naming_another_host_is_refused_until_deleted(tmp_path):
    (tmp_path / LOCK_FILE).write_text(json.dumps({"pid": 1, "host": "node-7", "command": "python -m bench.run"}))
    with pytest.raises(HarnessError, match="pid 1 on host node-7 .* delete .*and run this again"):
        with run_lock(tmp_path, "test"):
            pass
    (tmp_path / LOCK_FILE).unlink()
    with run_lock(tmp_path, "test"):
        pass


def test_one_process_cannot_hold_a_directory_twice(tmp_path):
    with run_lock(tmp_path, "first"):
        with pytest.raises(HarnessError, match=f"in use by pid {os.getpid()}"):
            with run_lock(tmp_path, "second"):
                pass
