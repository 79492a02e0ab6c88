"""Ctrl-C at any phase ends with one line (a resume hint once there is a sweep to resume), and no
process of the command, Ray's included, outlives it: while Ray starts, here, and mid-sweep in
tests/test_faults.py; a SIGTERM mid-sweep ends the same way. Real Ray start-ups: marked slow."""
import signal
import subprocess
import sys
import time

import psutil
import pytest

from tests.process_tree import assert_all_gone

pytestmark = pytest.mark.slow
ARGS = ["--preset", "smoke", "--datasets", "synthetic", "--fid-samples", "200", "--models", "vae", "--seeds", "1"]


def interrupt_when(run_dir, ready, timeout=900, signum=signal.SIGINT):
    """Start the sweep, send signum once ready() holds, return (exit status, stderr, descendants seen)."""
    driver = subprocess.Popen([sys.executable, "-m", "bench.run", *ARGS, "--out", str(run_dir)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    parent, seen = psutil.Process(driver.pid), {}
    deadline = time.time() + timeout
    while not ready() and time.time() < deadline:
        seen.update({p.pid: p for p in parent.children(recursive=True)})
        time.sleep(0.05)
    seen.update({p.pid: p for p in parent.children(recursive=True)})
    driver.send_signal(signum)
    _, err = driver.communicate(timeout=300)
    return driver.returncode, err, list(seen.values())


def test_ctrl_c_while_ray_starts(tmp_path):
    run_dir = tmp_path / "run"
    code, err, processes = interrupt_when(run_dir, lambda: (run_dir / ".lock").exists())
    assert code == 130 and err.count("\n") == 1 and "Traceback" not in err, err
    assert err.startswith("interrupted; nothing was started")
    assert_all_gone(processes)


def test_sigterm_mid_sweep_ends_as_ctrl_c_and_names_the_resume_command(tmp_path):
    """A SIGTERM (a scheduler's stop) ends as a Ctrl-C does, not with Ray's exit (issue 23, finding 12); the
    Ctrl-C mid-sweep, its message and its resume: tests/test_faults.py."""
    run_dir = tmp_path / "run"
    code, err, processes = interrupt_when(run_dir, lambda: list(run_dir.glob("ray/sweep/*/checkpoint_*")),
                                          signum=signal.SIGTERM)
    assert code == 1 and "Traceback" not in err, err
    assert "to resume: python -m bench.run" in err and err.strip().endswith("--resume")
    assert len(processes) > 2  # Ray's servers and the trial's worker were there
    assert_all_gone(processes)
