"""A real full disk: a tmpfs in a private mount namespace (nothing outside it is touched), filled by a
filler file until a write no longer fits. The command ends with one line that names the fault, the
folder and what to run again, leaves what it had written readable, and that command, run once the
filler is deleted, finishes the work.

bench.run: a trial's first checkpoint does not fit; the resumed sweep's results equal an
uninterrupted one's (tests/conftest.py reference_sweep). bench.rescore: the new rows of a trial
(rows.json) do not fit; the trial's files are as they were, and the same command then adds them."""
import errno
import json
import shlex
import shutil
import subprocess
import sys
import types
from pathlib import Path

import pytest

import bench.rundir
import bench.run
from bench.fs_faults import filesystem_fault
from bench.sweep import collect_trial, write_results
from bench.sweep_storage import fault_of, fault_result, torn_checkpoint_removed
from bench.trial import Evaluation, TrialSpec, run_trial
from tests.test_run_relocation import ARGS, assert_same_results

# left free: the run directory's records fit (~100 kB), a trial's checkpoint (weights and Adam's moments,
# several MB) does not
ROOM = 1024 * 1024


@pytest.fixture
def folders(tmp_path):
    """(where the small disk is mounted, a folder outside it for the commands' output)."""
    probe = subprocess.run(["unshare", "--user", "--map-root-user", "--mount", "sh", "-c",
                            "mount -t tmpfs -o size=1m none /mnt"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip("no unshare with user and mount namespaces here (needed to mount a small tmpfs)")
    (tmp_path / "logs").mkdir()
    return tmp_path / "disk", tmp_path / "logs"


def on_a_full_disk(disk: Path, commands: str, room: int = ROOM, first: str = "true") -> subprocess.CompletedProcess:
    """`commands` (sh) with a 64 MB tmpfs mounted on `disk`, `first` run on it, and then filled up to
    `room` bytes by disk/filler."""
    disk.mkdir()
    fill = (f"mount -t tmpfs -o size=64m none {disk} && {first} && "
            f"head -c $(( $(df -B1 --output=avail {disk} | tail -1) - {room} )) /dev/zero > {disk}/filler")
    return subprocess.run(["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", f"{fill} && {commands}"],
                          capture_output=True, text=True, timeout=1800)


@pytest.mark.slow
@pytest.mark.parametrize("full", ["run_dir", "storage"])
def test_a_full_disk_is_one_line_and_the_run_resumes_once_space_is_freed(tmp_path, folders, reference_sweep, full):
    disk, logs = folders
    run_dir = disk / "run" if full == "run_dir" else tmp_path / "run"
    storage = ["--storage", str(disk / "storage")] if full == "storage" else []
    sweep = shlex.join([sys.executable, "-m", "bench.run", *ARGS, "--out", str(run_dir), *storage])
    # the resume runs in the same namespace, after the filler is deleted: the run directory is copied out
    out = on_a_full_disk(disk, f"{sweep} > {logs}/cut.out 2> {logs}/cut.err; echo $? > {logs}/cut.rc; "
                               f"rm {disk}/filler && "
                               f'cmd=$(sed -n "s/.*resume with: python //p" {logs}/cut.err) && '
                               f"eval {shlex.quote(sys.executable)} $cmd > {logs}/resume.out 2>&1; "
                               f"echo $? > {logs}/resume.rc; cp -a {run_dir} {tmp_path}/after")
    assert out.returncode == 0, out.stderr
    stdout, stderr = (logs / "cut.out").read_text(), (logs / "cut.err").read_text()
    assert (logs / "cut.rc").read_text().strip() == "2", stdout[-3000:] + stderr[-3000:]
    assert stderr.startswith("error: the disk is full (") and stderr.count("\n") == 1, stderr
    assert f"({disk}/{'run/ray' if full == 'run_dir' else 'storage'}/" in stderr, stderr  # the folder that is full
    assert "free space" in stderr and "Traceback" not in stdout + stderr, stdout[-3000:] + stderr
    assert stderr.rstrip().endswith(f"--out {run_dir} {shlex.join(storage)}".rstrip() + " --resume"), stderr
    resumed = (logs / "resume.out").read_text()
    assert (logs / "resume.rc").read_text().strip() == "0", resumed[-3000:]
    assert_same_results(tmp_path / "after", reference_sweep)


@pytest.fixture
def scored_run(tmp_path):
    """A run directory of one real, tiny, finished trial (trained and scored here, without Ray)."""
    from tests.test_bad_input_more import SMOKE
    run_dir = tmp_path / "run"
    args = bench.run.parse_args([*SMOKE, "--out", str(run_dir)])
    config = bench.run.check_args(args)
    spec = TrialSpec("synthetic", "vae", 0)
    run_dir.mkdir()
    manifest = bench.rundir.manifest_for(args, config, [spec], str(run_dir / "ray"), 0.0, None, {})
    (run_dir / "manifest.json").write_text(json.dumps(manifest))
    work = tmp_path / "work"
    run_trial(spec, config["settings"]["synthetic"], Evaluation(fid_cache=str(tmp_path / "cache")), work,
              lambda metrics, folder: None)
    collect_trial(run_dir, spec.trial_id, types.SimpleNamespace(
        to_directory=lambda target: shutil.copytree(work, target, dirs_exist_ok=True)))
    write_results(run_dir, [spec])
    return run_dir


def run_files(run_dir: Path) -> dict:
    """Every file but the progress log (appended to, as it should be) and the lock (empty when free)."""
    return {p.relative_to(run_dir): p.read_bytes() for p in sorted(run_dir.rglob("*"))
            if p.is_file() and "logs" not in p.parts and p.name != ".lock"}


@pytest.mark.slow
@pytest.mark.parametrize("full_disk_holds", ["run_dir", "fid_cache"])
def test_a_full_disk_during_a_rescore_is_one_line_and_keeps_the_trials_files(tmp_path, folders, scored_run,
                                                                             full_disk_holds):
    disk, logs = folders
    # the full disk holds a copy of the run directory (the new rows.json, ~30 kB, does not fit), or of
    # the FID cache (the new reference statistics do not fit)
    if full_disk_holds == "run_dir":
        run_dir, cache, first = disk / "run", tmp_path / "cache", f"cp -a {scored_run} {disk}/run"
    else:
        run_dir, cache, first = shutil.copytree(scored_run, tmp_path / "run2"), disk / "cache", \
            f"cp -a {tmp_path}/cache {disk}/cache"
    # more samples per figure than the run scored: new figures, a new reference
    rescore = shlex.join([sys.executable, "-m", "bench.rescore", str(run_dir), "--fid-samples", "24",
                          "--fid-cache", str(cache)])
    out = on_a_full_disk(disk, f"{rescore} > {logs}/full.out 2> {logs}/full.err; echo $? > {logs}/full.rc; "
                               f"cp -a {run_dir} {tmp_path}/full && rm {disk}/filler && "
                               f"{rescore} > {logs}/freed.out 2>&1; echo $? > {logs}/freed.rc; "
                               f"cp -a {run_dir} {tmp_path}/freed",
                         room=8192, first=first)
    assert out.returncode == 0, out.stderr
    stdout, stderr = (logs / "full.out").read_text(), (logs / "full.err").read_text()
    assert (logs / "full.rc").read_text().strip() == "2", stdout[-3000:] + stderr[-3000:]
    assert stderr.startswith("error: the disk is full (") and stderr.count("\n") == 1, stderr
    assert f"({run_dir if full_disk_holds == 'run_dir' else cache}/" in stderr and "free space" in stderr, stderr
    assert "run the same command again" in stderr and "Traceback" not in stdout + stderr, stdout[-3000:] + stderr
    # no torn rows.json, no stray temporary file; the manifest only records the failed re-score's session
    after, before, manifest = run_files(tmp_path / "full"), run_files(scored_run), Path("manifest.json")
    assert {k: v for k, v in after.items() if k != manifest} == {k: v for k, v in before.items() if k != manifest}
    recorded = json.loads(after[manifest])
    assert {k: v for k, v in recorded.items() if not k.startswith("rescore")} == json.loads(before[manifest])
    if full_disk_holds == "fid_cache":  # the run directory had room to close the session: its time counts
        assert [s["wall_s"] is not None for s in recorded["rescores"]] == [True]
    assert (logs / "freed.rc").read_text().strip() == "0", (logs / "freed.out").read_text()[-3000:]
    rows = json.loads((tmp_path / "freed" / "trials" / "synthetic-vae-s0" / "rows.json").read_text())
    before = json.loads((scored_run / "trials" / "synthetic-vae-s0" / "rows.json").read_text())
    assert rows[:len(before)] == before and {r["n_samples"] for r in rows[len(before):]} == {24}


@pytest.mark.parametrize("error, torn_kept", [(OSError(errno.ENOSPC, "No space left on device"), False),
                                              (ValueError("not the file system's"), True)])
def test_a_checkpoint_that_a_file_system_fault_tore_is_deleted(tmp_path, error, torn_kept):
    """What a resume would restore: the newest checkpoint folder. One torn by a full disk must go; the
    one before it, and everything after other errors, stay."""
    (tmp_path / "checkpoint_000000").mkdir()
    with pytest.raises(type(error)):
        with torn_checkpoint_removed(str(tmp_path)):
            (tmp_path / "checkpoint_000001").mkdir()
            (tmp_path / "checkpoint_000001" / "checkpoint-main.pt").write_bytes(b"torn")
            raise error
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint_000000"] + ["checkpoint_000001"] * torn_kept


def test_a_trials_fault_reaches_the_driver_as_the_error_it_was(tmp_path):
    folder = str(tmp_path / "ray" / "sweep" / "synthetic-vae-s0")
    fault = fault_of(fault_result(OSError(errno.ENOSPC, "No space left on device"), folder))
    assert isinstance(fault, OSError) and fault.errno == errno.ENOSPC and fault.filename == folder
    assert filesystem_fault(fault) == ("the disk is full", folder)
    assert fault_of({"done": True}) is None
