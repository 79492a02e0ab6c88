"""python -m reports.publish copies a run into the repository: never over another run, never through a
symbolic link, and a bad destination is one line (issue 23, finding 8)."""
import json
import shutil
from pathlib import Path

import pytest

from reports.publish import main, public_files
from tests.report_fixtures import make_run


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    return make_run(tmp_path_factory.mktemp("publish"))


@pytest.fixture
def run(source, tmp_path):
    shutil.copytree(source, tmp_path / "run")
    return tmp_path / "run"


def snapshot(folder):
    return {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def refused(argv, capsys, needle):
    assert main([str(a) for a in argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and needle in err, err


def test_republishing_replaces_the_run_and_another_run_is_refused(run, tmp_path, capsys):
    dest = tmp_path / "results" / "study"
    assert main([str(run), str(dest)]) == 0
    assert (dest / "report.md").is_file() and (dest / "trials" / "cifar10-vae-s0").is_dir()
    # the fixture's trials predate previews: theirs are derived from samples/, which stays behind
    assert (dest / "trials" / "mnist-svae-s0" / "preview" / "index.json").is_file()
    assert not list(dest.rglob("*.npz")) and (run / "trials" / "mnist-svae-s0" / "samples" / "gmm.npz").is_file()
    # the same run again, with a trial gone (deleted to rerun it): its stale folder goes too
    shutil.rmtree(run / "trials" / "cifar10-vae-s0")
    (run / "results.csv").write_text("\n".join(line for line in (run / "results.csv").read_text().splitlines()
                                               if not line.startswith("cifar10-vae-s0,")) + "\n")
    assert main([str(run), str(dest)]) == 0
    assert not (dest / "trials" / "cifar10-vae-s0").exists()
    published = snapshot(dest)
    other = tmp_path / "other"
    shutil.copytree(run, other)
    manifest = json.loads((other / "manifest.json").read_text())
    (other / "manifest.json").write_text(json.dumps({**manifest, "name": "another study"}))
    refused([other, dest], capsys, "holds another published run")
    assert snapshot(dest) == published
    assert not [p for p in dest.parent.iterdir() if p.name.startswith(".")]  # no staging folder left behind


def test_the_calibration_run_is_among_the_published_files(run):
    (run / "calibration").mkdir()
    (run / "calibration" / "curve.csv").write_text("model,epoch,sampler,output,metric,value\n")
    assert Path("calibration/curve.csv") in public_files(run)  # what the epochs figure and levelling read


def test_a_symbolic_link_in_the_run_is_refused_and_nothing_is_copied(run, tmp_path, capsys):
    secret = tmp_path / "secret.txt"
    secret.write_text("password")
    metrics = run / "trials" / "mnist-svae-s0" / "metrics.csv"
    metrics.unlink()
    metrics.symlink_to(secret)
    dest = tmp_path / "dest"
    refused([run, dest], capsys, "is a symbolic link")
    assert not dest.exists()
    metrics.unlink()
    shutil.rmtree(run / "trials" / "mnist-svae-s1" / "samples")
    (run / "trials" / "mnist-svae-s1" / "samples").symlink_to(tmp_path, target_is_directory=True)
    refused([run, dest], capsys, "is a symbolic link")
    assert not dest.exists()
    (run / "trials" / "mnist-svae-s1" / "samples").unlink()
    (run / "trials" / "mnist-svae-s1" / "preview").symlink_to(tmp_path, target_is_directory=True)
    refused([run, dest], capsys, "is a symbolic link")
    assert not dest.exists()


@pytest.mark.parametrize("where, needle", [
    (lambda run: run, "lies inside the run directory"),
    (lambda run: run / "published", "lies inside the run directory"),
    (lambda run: run.parent / "a-file.txt", "is a file or a link, not a folder"),
])
def test_bad_destinations_are_one_line(run, capsys, where, needle):
    (run.parent / "a-file.txt").write_text("mine")
    before = snapshot(run.parent)
    refused([run, where(run)], capsys, needle)
    assert snapshot(run.parent) == before
