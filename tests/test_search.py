"""The baseline search (bench/search.py): argmin on a validation split, recorded, never repeated."""
import dataclasses
import json
import math

import pytest
import torch

import bench.search
from bench.presets import settings_for
from bench.models import MODELS
from bench.search import run_searches, search_path, validation_split
from bench.trial import Evaluation
from svae.data import load_images


def write_manifest(run_dir):
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "manifest.json").write_text(json.dumps({"config": {"settings": {}}, "grid": [], "protocol": {}}))


def test_search_picks_the_lowest_score_records_it_and_a_resume_does_not_repeat_it(tmp_path):
    write_manifest(tmp_path)
    settings = {"synthetic": settings_for("smoke", "synthetic")}
    calls = []

    def scores(job, grid, storage, resources):  # a hand-made landscape with its minimum at beta = 0.5
        calls.append((job["dataset"], job["model"]))
        return {v: 10 + abs(math.log2(v) + 1) for v in grid} | {8.0: None}  # 8.0 diverged

    chosen = run_searches(tmp_path, settings, ["svae", "beta-vae"], Evaluation(), "unused", {}, True, scores)
    assert chosen["synthetic"].model.beta_vae_beta == 0.5
    assert chosen["synthetic"].model.beta == settings["synthetic"].model.beta  # other models untouched
    assert calls == [("synthetic", "beta-vae")]
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    grid = list(MODELS["beta-vae"].search[1])
    assert manifest["search"]["table"] == {"beta-vae": {"knob": "beta_vae_beta", "grid": grid}}
    [record] = manifest["search"]["results"]
    assert record["chosen"] == 0.5 and {"value": 8.0, "score": None} in record["scores"]
    assert manifest["config"]["settings"]["synthetic"]["model"]["beta_vae_beta"] == 0.5
    assert search_path(tmp_path, "synthetic", "beta-vae").exists()
    from reports.report import _search_section
    section = "\n".join(_search_section(manifest["search"]))
    assert ("| synthetic | beta-vae | beta_vae_beta | 0.03125: 14.00, 0.0625: 13.00, 0.125: 12.00, 0.25: 11.00,"
            in section)
    assert "8: diverged" in section and section.endswith("| 0.5 |\n")

    again = run_searches(tmp_path, settings, ["svae", "beta-vae"], Evaluation(), "unused", {}, True, scores)
    assert calls == [("synthetic", "beta-vae")]  # resumed: read back, not searched again
    assert again["synthetic"].model.beta_vae_beta == 0.5


def test_search_off_keeps_the_preset_value_and_says_so(tmp_path):
    write_manifest(tmp_path)
    settings = {"synthetic": settings_for("smoke", "synthetic")}
    kept = run_searches(tmp_path, settings, ["beta-vae"], Evaluation(), "unused", {}, False,
                        lambda *a: pytest.fail("searched although disabled"))
    assert kept == settings
    assert json.loads((tmp_path / "manifest.json").read_text())["search"]["enabled"] is False


def test_validation_split_is_carved_from_the_training_images():
    settings = settings_for("smoke", "synthetic")
    train = load_images("synthetic", "train").images
    fit, validation = validation_split(train, settings)
    assert len(fit) + len(validation) == len(train) and len(validation) == len(train) // 6
    assert torch.equal(torch.cat([fit, validation]), train)  # disjoint, and never the test split


@pytest.mark.slow
def test_a_tiny_real_search_trains_each_candidate_once_and_picks_its_argmin(tmp_path, monkeypatch):
    write_manifest(tmp_path)
    settings = {"synthetic": settings_for("smoke", "synthetic", fid_samples=100)}
    trainings = []
    real_train = bench.search._train
    monkeypatch.setattr(bench.search, "_train", lambda *a: trainings.append(1) or real_train(*a))
    searched = dataclasses.replace(MODELS["beta-vae"], search=("beta_vae_beta", (0.25, 4.0)))
    monkeypatch.setitem(MODELS, "beta-vae", searched)

    def in_process(job, grid, storage, resources):
        return {v: bench.search.score_candidate(job["dataset"], job["model"], job["knob"], v, job["settings"],
                                                job["evaluation"]) for v in grid}

    evaluation = Evaluation(fid_cache=str(tmp_path / "cache"))
    chosen = run_searches(tmp_path, settings, ["beta-vae"], evaluation, "unused", {}, True, in_process)
    [record] = json.loads((tmp_path / "manifest.json").read_text())["search"]["results"]
    scores = {s["value"]: s["score"] for s in record["scores"]}
    assert len(trainings) == 2 and all(math.isfinite(s) for s in scores.values())
    assert chosen["synthetic"].model.beta_vae_beta == min(scores, key=scores.get) == record["chosen"]
    run_searches(tmp_path, settings, ["beta-vae"], evaluation, "unused", {}, True, in_process)
    assert len(trainings) == 2


@pytest.mark.slow
def test_a_candidate_that_errors_stops_the_sweep_and_records_no_choice(tmp_path):
    """Missing data is an error, not a divergence: the search must not choose among the survivors."""
    import ray
    from svae.errors import HarnessError
    run_dir = tmp_path / "run"
    write_manifest(run_dir)
    settings = {"fashion-mnist": settings_for("smoke", "fashion-mnist")}
    evaluation = Evaluation(data_root=str(tmp_path / "no-data"), system_copy=False)
    try:
        with pytest.raises(HarnessError, match=r"search on fashion-mnist failed for 9 of 9 candidates "
                                               r"\(first: beta_vae_beta = .*missing train-images"):
            run_searches(run_dir, settings, ["beta-vae"], evaluation, str(tmp_path / "ray"), {"cpu": 1}, True)
    finally:
        ray.shutdown()
    assert not search_path(run_dir, "fashion-mnist", "beta-vae").exists()  # a resume searches again
