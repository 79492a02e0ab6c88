"""One command line (issue 25): the svae-bench console script and its subcommands, one help formatter,
--help exit 0; and the interrupt handling every command shares (issue 23, findings 11 and 12): a Ctrl-C
that Python drops is delivered again, a SIGTERM is handled as a Ctrl-C."""
import gc
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import bench.__main__ as console
from svae.interrupt import redeliver_interrupts, terminate_as_interrupt

ROOT = Path(__file__).resolve().parent.parent


def exit_status(main, argv):
    try:
        return main(argv)
    except SystemExit as e:
        return e.code


def test_svae_bench_help_lists_every_subcommand(capsys):
    assert exit_status(console.main, ["--help"]) == 0
    out = capsys.readouterr().out
    for name in ("run", "fid", "rescore", "report", "as-published", "publish", "plan", "simulate", "perf", "curve",
                 "reproduce"):
        assert f"\n  {name} " in out, out


@pytest.mark.parametrize("name", list(console.SUBCOMMANDS))
def test_every_subcommand_help_exits_0_and_names_each_default_once(name, capsys):
    assert exit_status(console.main, [name, "--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: ") and out.count("(default: (default") == 0
    assert all(line.count("default") <= 1 for line in out.splitlines()), out


def test_an_unknown_subcommand_is_one_line_with_did_you_mean(capsys):
    assert exit_status(console.main, ["rescor", "x"]) == 2
    err = capsys.readouterr().err
    assert err == ("error: unknown command 'rescor' (did you mean 'rescore'?); choose from run, fid, rescore, "
                   "report, as-published, publish, plan, simulate, perf, curve, reproduce\n")


def test_the_console_script_is_declared_and_runs_the_subcommand():
    scripts = (ROOT / "pyproject.toml").read_text().split("[project.scripts]\n")[1].split("\n[")[0]
    assert scripts.startswith('svae-bench = "bench.__main__:main"'), scripts  # (tomllib: Python 3.11 and later)
    out = subprocess.run([sys.executable, "-m", "bench", "publish", "--help"], capture_output=True, text=True,
                         check=False, timeout=120, cwd=ROOT)
    assert out.returncode == 0 and "usage: python -m reports.publish [-h] RUN_DIR DEST" in out.stdout, out.stderr


def test_reports_publish_parses_with_argparse(capsys):
    import reports.publish
    assert exit_status(reports.publish.main, ["--help"]) == 0
    assert exit_status(reports.publish.main, ["only-one"]) == 2


# ---------------------------------------------------------------- finding 11: a dropped Ctrl-C

class Finalised:
    """An object whose finaliser is where the Ctrl-C lands: Python prints it and drops it."""

    def __del__(self):
        raise KeyboardInterrupt


def test_a_ctrl_c_dropped_in_a_finaliser_is_delivered_again(monkeypatch):
    seen = []
    monkeypatch.setattr(sys, "unraisablehook", redeliver_interrupts(seen.append))
    # Python's own Ctrl-C handler, whatever pytest inherited (a shell's background job ignores SIGINT)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        Finalised()
        gc.collect()
        for _ in range(3000):  # ordinary code running on, as a command does after an import
            time.sleep(0.01)
        pytest.fail("the Ctrl-C was dropped")
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGINT, previous)
    assert seen == []  # a KeyboardInterrupt is never handed to the previous hook


def test_without_the_hook_the_ctrl_c_is_dropped(monkeypatch):
    """The defect itself: with Python's own hook, the command runs on."""
    seen = []
    monkeypatch.setattr(sys, "unraisablehook", seen.append)
    Finalised()
    gc.collect()
    time.sleep(0.2)
    assert [u.exc_type for u in seen] == [KeyboardInterrupt]


# ---------------------------------------------------------------- finding 12: SIGTERM as Ctrl-C

def test_sigterm_does_what_the_present_ctrl_c_handler_does(monkeypatch):
    with pytest.raises(KeyboardInterrupt):
        terminate_as_interrupt(signal.SIGTERM, None)  # Python's default: a KeyboardInterrupt
    stops = []
    original = signal.signal(signal.SIGINT, lambda signum, frame: stops.append(signum))  # as Ray Tune's
    try:
        terminate_as_interrupt(signal.SIGTERM, None)
    finally:
        signal.signal(signal.SIGINT, original)
    assert stops == [signal.SIGINT]


def test_sigterm_while_a_command_loads_is_one_line_and_130():
    process = subprocess.Popen([sys.executable, "-m", "bench.run", "--preset", "smoke", "--datasets", "synthetic",
                                "--dry-run"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    time.sleep(1.0)  # importing torch and Ray takes seconds
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130 and err.count("\n") == 1 and err.startswith("interrupted"), err
