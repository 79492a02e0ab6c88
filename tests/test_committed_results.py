"""The committed study (results/fashion-mnist-cpu) re-renders from its own results.csv and manifest.json
to the tables and claims committed beside it: a change to reports/ either keeps them equal or
re-renders them (python -m reports results/fashion-mnist-cpu) in the same commit."""
import json
import shutil
from pathlib import Path

import pytest

from reports.claims import check_claims
from reports.report import private, table_texts
from reports.rundir import load_run
from reports.tables import build_tables

STUDY = Path(__file__).resolve().parents[1] / "results" / "fashion-mnist-cpu"


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    """The texts rendered from a copy that holds nothing but results.csv and manifest.json."""
    copy = tmp_path_factory.mktemp("study") / STUDY.name
    copy.mkdir()
    for name in ("results.csv", "manifest.json"):
        shutil.copy(STUDY / name, copy / name)
    run = load_run(copy)
    claims, _ = check_claims(run)
    return {name: private(run, text) for name, text in table_texts(run, build_tables(run), claims).items()}


@pytest.mark.parametrize("name", ["table.md", "table.tex", "table.csv", "claims.md"])
def test_committed_file_equals_its_rendering(rendered, name):
    assert (STUDY / name).read_text() == rendered[name], f"re-render: python -m reports {STUDY}"


def test_study_is_every_model_five_seeds_within_two_hours():
    manifest = json.loads((STUDY / "manifest.json").read_text())
    models = {m["name"] for m in manifest["registry"]["models"]}
    assert set(manifest["config"]["models"]) == models
    assert manifest["config"]["seeds_list"] == [0, 1, 2, 3, 4]
    assert manifest["host"]["cpus"] == 2
    assert 0 < manifest["wall_time_s"] <= 120 * 60
