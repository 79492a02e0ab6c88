"""The committed study (results/fashion-mnist-cpu, written by python -m reports.publish) re-renders
from its own committed inputs to the reports committed beside them: a change to reports/ either
keeps them equal or re-renders them (python -m reports results/fashion-mnist-cpu) in the same commit."""
import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

import reports

STUDY = Path(__file__).resolve().parents[1] / "results" / "fashion-mnist-cpu"
RENDERED = ["report.md", "table.md", "table.tex", "table.csv", "claims.md"]


@pytest.fixture(scope="module")
def rerendered(tmp_path_factory):
    """A copy of the committed study without its rendered files, rendered again."""
    copy = tmp_path_factory.mktemp("study") / STUDY.name
    shutil.copytree(STUDY, copy, ignore=shutil.ignore_patterns("figures", *RENDERED))
    reports.render(copy)
    return copy


@pytest.mark.parametrize("name", RENDERED)
def test_committed_report_equals_its_rendering(rerendered, name):
    assert (STUDY / name).read_text() == (rerendered / name).read_text(), \
        f"re-render the study: python -m reports {STUDY.relative_to(STUDY.parents[1])}"


def test_every_committed_figure_is_rendered_again(rerendered):
    committed = sorted(p.name for p in (STUDY / "figures").iterdir())
    assert committed and committed == sorted(p.name for p in (rerendered / "figures").iterdir())


def test_study_is_the_cpu_preset_every_model_five_seeds_within_two_hours():
    manifest = json.loads((STUDY / "manifest.json").read_text())
    config = manifest["config"]
    assert (config["preset"], config["datasets"], config["overrides"]) == ("cpu", ["fashion-mnist"], {})
    assert set(config["models"]) == {m["name"] for m in manifest["registry"]["models"]}
    assert config["seeds_list"] == [0, 1, 2, 3, 4]
    settings = config["settings"]["fashion-mnist"]
    assert settings["train_subset"] is None and settings["fid_samples"] == 10000
    assert (settings["gmm"]["components"], settings["gmm"]["fit_n"]) == (100, 10000)
    assert manifest["search"]["enabled"] and manifest["search"]["results"]
    assert manifest["host"]["cpus"] == 2 and "hostname" not in manifest["host"]
    assert all(s["wall_s"] is not None for s in manifest["sessions"])
    assert 0 < manifest["wall_time_s"] <= 120 * 60
    results = pd.read_csv(STUDY / "results.csv")
    assert set(results["trial_id"]) == {t["trial_id"] for t in manifest["grid"]}  # all 25 trials finished
    assert set(results["n_samples"]) == {10000} and set(results["reference_n"]) == {10000}
