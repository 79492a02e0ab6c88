"""A published run (python -m reports.publish) re-renders without leaving a lock file, and
re-scoring it says where the weights are instead of advising a --resume that cannot work there."""
import json

import bench.rescore
import reports.__main__
from svae.lock import LOCK_FILE
from tests.report_fixtures import make_run


def published(tmp_path, flag: bool):
    run = make_run(tmp_path)
    manifest = json.loads((run / "manifest.json").read_text())
    (run / "manifest.json").write_text(json.dumps({**manifest, **({"published": True} if flag else {})}))
    return run


def test_reports_on_a_published_run_leave_nothing_behind(tmp_path, capsys):
    run = published(tmp_path / "published", True)
    assert reports.__main__.main([str(run)]) == 0 and not (run / LOCK_FILE).exists()
    assert (run / "report.md").is_file()  # tests/test_lock.py: a run directory of bench.run is locked


def test_rescore_of_a_published_run_points_to_the_original(tmp_path, capsys):
    run = published(tmp_path, True)
    assert bench.rescore.main([str(run)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is a published run" in err and "--resume" not in err
