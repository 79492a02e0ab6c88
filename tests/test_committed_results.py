"""The committed studies (results/<name>, written by python -m reports.publish) re-render from their own
committed inputs to the reports committed beside them: a change to reports/ either keeps them equal or
re-renders them (python -m reports results/<name>) in the same commit."""
import json
import shutil
from datetime import datetime
from pathlib import Path

import pandas as pd
import pytest

import reports
from bench.rundir import TIME_FORMAT

RESULTS = Path(__file__).resolve().parents[1] / "results"
RENDERED = ["report.md", "table.md", "table.tex", "table.csv", "claims.md"]
# name -> (dataset, the config's --set overrides, the most wall time it may have taken, its sessions that
# recorded no wall time: the MNIST study's first was killed with the machine's working session)
STUDIES = {"fashion-mnist-cpu": ("fashion-mnist", {}, 2 * 3600, 0),
           "mnist-cpu": ("mnist", {"epochs": 8}, 8 * 3600, 1)}  # issue 27: at most 8 hours of machine time


@pytest.fixture(scope="module", params=sorted(STUDIES))
def study(request):
    return RESULTS / request.param


@pytest.fixture(scope="module")
def rerendered(study, tmp_path_factory):
    """A copy of the committed study without its rendered files, rendered again."""
    copy = tmp_path_factory.mktemp("study") / study.name
    shutil.copytree(study, copy, ignore=shutil.ignore_patterns("figures", *RENDERED))
    reports.render(copy)
    return copy


@pytest.mark.parametrize("name", RENDERED)
def test_committed_report_equals_its_rendering(study, rerendered, name):
    assert (study / name).read_text() == (rerendered / name).read_text(), \
        f"re-render the study: python -m reports {study.relative_to(RESULTS.parent)}"


def test_every_committed_figure_is_rendered_again(study, rerendered):
    committed = sorted(p.name for p in (study / "figures").iterdir())
    assert committed and committed == sorted(p.name for p in (rerendered / "figures").iterdir())


def test_study_is_the_cpu_preset_every_model_five_seeds_within_its_budget(study):
    dataset, overrides, most_seconds, unmeasured = STUDIES[study.name]
    manifest = json.loads((study / "manifest.json").read_text())
    config = manifest["config"]
    assert (config["preset"], config["datasets"], config["overrides"]) == ("cpu", [dataset], overrides)
    assert set(config["models"]) == {m["name"] for m in manifest["registry"]["models"]}
    assert config["seeds_list"] == [0, 1, 2, 3, 4]
    settings = config["settings"][dataset]
    assert settings["train_subset"] is None and settings["fid_samples"] == 10000
    assert (settings["gmm"]["components"], settings["gmm"]["fit_n"]) == (100, 10000)
    assert manifest["search"]["enabled"] and manifest["search"]["results"]
    assert manifest["host"]["cpus"] == 2 and "hostname" not in manifest["host"]
    assert sum(s["wall_s"] is None for s in manifest["sessions"]) == unmeasured
    assert 0 < longest_possible(manifest) <= most_seconds
    results = pd.read_csv(study / "results.csv")
    assert set(results["trial_id"]) == {t["trial_id"] for t in manifest["grid"]}  # all 25 trials finished
    # every distribution figure on 10,000 samples against the 10,000 test images; the memorisation
    # check (nn_train_share, bench/memorisation.py) searches 2,000 samples' nearest images in both splits
    scored = results[results["metric"] != "nn_train_share"]
    assert set(scored["n_samples"]) == {10000} and set(scored["reference_n"]) == {10000}


def longest_possible(manifest: dict) -> float:
    """The most time the run's sessions (bench.run and bench.rescore) can have taken: one that recorded no
    wall time ran at most until the next began (the run's lock lets one hold it at a time)."""
    sessions = sorted(manifest["sessions"] + manifest.get("rescores", []), key=lambda s: start(s))
    assert sessions[-1]["wall_s"] is not None, "the last session must have ended"
    return sum(s["wall_s"] if s["wall_s"] is not None else (start(after) - start(s)).total_seconds()
               for s, after in zip(sessions, sessions[1:] + [None]))


def start(session: dict) -> datetime:
    return datetime.strptime(session["started"], TIME_FORMAT)
