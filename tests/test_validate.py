"""Reports refuse damaged results: each damage below exits 2 with one line, and leaves every
report file as it was."""
import csv
import io
import json

import pytest

import reports
from reports.__main__ import main
from reports.validate import ROUNDING, validate_results
from svae.contract import METRIC_RANGES
from svae.errors import HarnessError
from tests.report_fixtures import make_run


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    run = make_run(tmp_path_factory.mktemp("validate"))
    reports.render(run)
    return run


def copy_run(rendered, tmp_path):
    import shutil
    shutil.copytree(rendered, tmp_path / "run")
    return tmp_path / "run"


def rows(run):
    return list(csv.reader(io.StringIO((run / "results.csv").read_text())))


def write_rows(run, table):
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(table)
    (run / "results.csv").write_text(buffer.getvalue())


def truncated(run):  # a copy that stopped halfway: lost rows (the last ones, cifar10's)
    text = (run / "results.csv").read_text()
    (run / "results.csv").write_text(text[:len(text) // 2].rsplit("\n", 1)[0] + "\n")


def duplicated(run):
    table = rows(run)
    write_rows(run, table + [table[3]])


def negative(run):
    table = rows(run)
    table[5][table[0].index("value")] = "-3.5"
    write_rows(run, table)


def changed_value(run):  # a value that differs from the trial's own record, within range
    table = rows(run)
    table[5][table[0].index("value")] = "99.0"
    write_rows(run, table)


def empty(run):
    (run / "results.csv").write_text("")


def header_only(run):
    (run / "results.csv").write_text((run / "results.csv").read_text().split("\n", 1)[0] + "\n")


def missing(run):
    (run / "results.csv").unlink()


def foreign_row(run):  # a row of a trial that did not finish (mnist-vae-s4 failed)
    table = rows(run)
    row = list(table[-1])
    row[0], row[3] = "mnist-vae-s4", "4"
    write_rows(run, table + [row])


def edited(column, value, row=5):
    """results.csv with one cell of a column other than the value edited: the figure then stands under
    another model, seed or dataset, and the report ranks it there (issue 23, finding 4)."""
    def damage(run):
        table = rows(run)
        table[row][table[0].index(column)] = value
        write_rows(run, table)
    damage.__name__ = f"edited_{column}"
    return damage


def lost_record(run):
    (run / "trials" / "mnist-svae-s0" / "rows.json").write_text("[{not json")


@pytest.mark.parametrize("damage, needle", [
    (truncated, "lacks"), (duplicated, "twice"), (negative, "-3.5, outside its range [0, inf]"),
    (changed_value, "but the trial's record says"), (empty, "is not a readable CSV (No columns to parse from file)"),
    (header_only, "lacks 61 results"),  # FID: 8 SVAE trials x 4 outputs + 4 VAE gmm + 1 VAE prior; precision: 5 x 4 + 4
    (missing, "is missing but"), (foreign_row, "trial mnist-vae-s4 has no finished record"),
    (lost_record, "record"),
    (edited("model", "svae", row=-1), "has model 'svae', but the trial's record says 'vae'"),
    (edited("seed", "3"), "has seed '3', but the trial's record says 0"),
    (edited("extractor", "fd_domain"), "has extractor 'fd_domain'"),
    (edited("dataset", "../../escape"), "dataset '../../escape' is not one of the run's (manifest.json)"),
])
def test_damaged_results_are_refused_and_reports_kept(rendered, tmp_path, capsys, damage, needle):
    run = copy_run(rendered, tmp_path)
    damage(run)
    before = snapshot(run)  # the reports rendered from the intact results, and the damage
    assert main([str(run)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and needle in err, err
    assert snapshot(run) == before and (run / "report.md").exists()


def snapshot(run):
    return {p: p.read_bytes() for p in run.rglob("*") if p.is_file() and p.name != ".lock"}


def test_intact_results_pass_and_rounding_below_zero_is_accepted(rendered, tmp_path):
    run = copy_run(rendered, tmp_path)
    validate_results(run)
    table = rows(run)
    column = table[0].index("value")
    table[1][column] = repr(-ROUNDING / 2)  # a distance of identical sets, a hair below zero
    write_rows(run, table)
    record_file = run / "trials" / table[1][0] / "rows.json"
    record = json.loads(record_file.read_text())
    key = [table[1][table[0].index(c)] for c in ("sampler", "output", "metric")]
    next(r for r in record if [r["sampler"], r["output"], r["metric"]] == key)["value"] = -ROUNDING / 2
    record_file.write_text(json.dumps(record))
    validate_results(run)
    table[1][column] = repr(-ROUNDING * 10)
    write_rows(run, table)
    with pytest.raises(HarnessError, match="outside its range"):
        validate_results(run)


def test_the_range_table_drives_the_check(rendered, tmp_path, monkeypatch):
    run = copy_run(rendered, tmp_path)
    monkeypatch.setitem(METRIC_RANGES, "fid", (0.0, 20.0))  # a metric bounded above, like precision in [0, 1]
    with pytest.raises(HarnessError, match=r"fid of mnist-svae-s1/gmm/x_hat/\S+ is 22, outside its range \[0, 20\]"):
        validate_results(run)


def test_names_that_become_file_names_cannot_leave_the_run_directory(rendered, tmp_path, capsys):
    """A crafted run directory, consistent with itself: a dataset named ../../../escape in the manifest,
    the trials' records and results.csv. Figure file names are built from it (figures/fid_<dataset>.png),
    so rendering would write two folders above figures/ (issue 23, finding 3); it is refused instead."""
    run = copy_run(rendered, tmp_path)
    escape = "../../../escape"  # from figures/fid_<dataset>.png: the folder above the run directory
    for path in [run / "manifest.json", run / "results.csv", *run.glob("trials/*/rows.json"),
                 *run.glob("trials/*/status.json")]:
        path.write_text(path.read_text().replace('"cifar10"', json.dumps(escape)).replace(",cifar10,", f",{escape},"))
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file() and p.name != ".lock"}
    assert main([str(run)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert f"{escape!r}, not a plain name" in err, err
    assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file() and p.name != ".lock"} == before
    assert not list(tmp_path.rglob("escape*"))
