"""The run directory against docs/run_directory.md, and python -m bench.rescore on a real tiny run.

The tiny run is made by the sweep's own functions without Ray (run_trial, collect_trial,
write_results, manifest_for, reports.render): one SVAE and one two-stage trial on synthetic data.
"""
import json
import re
import shutil
import types
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import bench.run
import bench.rundir
import reports
from bench.presets import PRESETS, smoke
from bench.reproduce import main as reproduce_main
from bench.rescore import main as rescore_main
from bench.rescore import parse_args, plan, rescore_trial
from bench.sweep import RESULT_COLUMNS, collect_trial, write_results
from bench.trial import Evaluation, TrialSpec, run_trial
from tests.fid_helpers import inception_weights  # noqa: F401

DOC = Path(__file__).resolve().parents[1] / "docs" / "run_directory.md"
TINY = ["--preset", "tiny", "--datasets", "synthetic", "--models", "svae", "two-stage", "--seeds", "1"]


def documented_columns() -> list:
    section = DOC.read_text().split("## results.csv columns", 1)[1]
    return [c.strip() for c in re.search(r"`([^`]+)`", section).group(1).split(",")]


def test_documented_columns_are_the_ones_written():
    assert documented_columns() == RESULT_COLUMNS


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    PRESETS["tiny"] = lambda dataset: replace(smoke(dataset), epochs=1, train_subset=200, fid_samples=16,
                                              grid_samples=8)
    root = tmp_path_factory.mktemp("tiny")
    args = bench.run.parse_args([*TINY, "--out", str(root / "run")])
    config = bench.run.check_args(args)
    run_dir, storage = root / "run", str(root / "run" / "ray")
    grid = [TrialSpec("synthetic", m, 0) for m in config["models"]]
    evaluation = Evaluation(fid_cache=storage + "/fid-cache")
    run_dir.mkdir()
    manifest = bench.rundir.manifest_for(args, config, grid, storage, 0.0, None, {})
    (run_dir / "manifest.json").write_text(json.dumps(manifest))
    threads = torch.get_num_threads()
    torch.set_num_threads(int(args.cpus_per_trial))  # as a sweep's trial runs (bench/sweep.py): what reproduce repeats
    for spec in grid:
        work = root / "work" / spec.trial_id
        run_trial(spec, config["settings"]["synthetic"], evaluation, work, lambda metrics, folder: None)
        checkpoint = types.SimpleNamespace(
            to_directory=lambda target, w=work: shutil.copytree(w, target, dirs_exist_ok=True))
        collect_trial(run_dir, spec.trial_id, checkpoint)
    torch.set_num_threads(threads)
    write_results(run_dir, grid)
    reports.render(run_dir)
    yield run_dir
    del PRESETS["tiny"]


@pytest.mark.slow
def test_tiny_run_has_exactly_the_documented_files_and_columns(tiny_run):
    doc = DOC.read_text()
    results = pd.read_csv(tiny_run / "results.csv")
    assert list(results.columns) == documented_columns()
    for name in ("manifest.json", "results.csv", "table.md", "table.tex", "table.csv", "claims.md", "report.md"):
        assert (tiny_run / name).is_file() and name in doc
    for folder in (tiny_run / "trials").iterdir():
        status = json.loads((folder / "status.json").read_text())
        assert status["status"] == "finished" and set(status) == {
            "status", "error", "dataset", "model", "seed", "train_seconds", "eval_seconds", "curve_seconds",
            "attempt_id"}
        stages = sorted(set(pd.read_csv(folder / "metrics.csv")["stage"]))
        expected = {"status.json", "rows.json", "metrics.csv", "orientation.json", "sampler_facts.json"} | {
            f"checkpoint-final-{s}.pt" for s in stages}
        samplers = set(results.loc[results["trial_id"] == folder.name, "sampler"])
        expected |= {f"samples/{s}.npz" for s in samplers} | {f"preview/{s}.png" for s in samplers | {
            "nearest", "interpolation", "interpolation-ends"}}
        expected |= {"preview/index.json"}
        assert {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()} == expected
        assert set(torch.load(folder / f"checkpoint-final-{stages[0]}.pt", weights_only=True)) == {
            "model", "epoch", "history"}  # a finished trial keeps its weights, not its optimizer or RNG states
        assert list(pd.read_csv(folder / "metrics.csv").columns)[:10] == [
            "stage", "epoch", "loss", "recon_mse", "kl", "gamma", "active_units", "seconds", "images_per_s", "lr"]
    for status in re.findall(r'"status": ([^}]+?), "error"', doc)[0].split("|"):
        assert status.strip().strip('"') in ("finished", "failed", "interrupted")
    assert set(results["metric"]) == {"fd_domain", "kd_domain", "precision", "recall", "density", "coverage",
                                      "nn_train_share"}  # the memorisation check, in pixels (documented)
    assert set(results.loc[results["metric"] == "nn_train_share", "extractor"]) == {"pixels"}
    assert "fid" not in set(results["metric"])  # fd_domain is never stored as fid


@pytest.mark.slow
def test_rescore_with_the_same_extractor_reproduces_the_stored_figures(tiny_run, capsys):
    job = plan(parse_args([str(tiny_run), "--verify"]))
    for spec, folder in job["trials"]:
        stored = {(r["sampler"], r["output"], r["metric"]): r["value"]
                  for r in json.loads((folder / "rows.json").read_text())}  # the memorisation rows too
        rows = rescore_trial(spec, folder, job["settings"]["synthetic"], job["evaluation"],
                             {"domain": job["scorers"]["domain"]})
        again = {(r["sampler"], r["output"], r["metric"]): r["value"] for r in rows}
        assert again.keys() == stored.keys()
        for key, value in stored.items():
            assert again[key] == pytest.approx(value, rel=1e-6, abs=1e-12), key
    before = (tiny_run / "results.csv").read_bytes()
    assert rescore_main([str(tiny_run), "--verify"]) == 0
    assert (tiny_run / "results.csv").read_bytes() == before
    assert "MISMATCH" not in capsys.readouterr().out


@pytest.mark.slow
def test_rescore_with_another_extractor_adds_rows_and_keeps_the_old(tiny_run, inception_weights, capsys):
    before = pd.read_csv(tiny_run / "results.csv")
    argv = [str(tiny_run), "--fid-backbone", "inception", "--fid-weights", str(inception_weights), "--metrics", "fid"]
    assert rescore_main(argv) == 0
    after = pd.read_csv(tiny_run / "results.csv")
    pd.testing.assert_frame_equal(after.iloc[:0], before.iloc[:0])  # same columns
    old = after[after["extractor"] != "inception-fid"].reset_index(drop=True)
    pd.testing.assert_frame_equal(old, before)
    new = after[after["extractor"] == "inception-fid"]
    # svae: 3 samplers x 4 outputs; two-stage: 4 samplers x 1 output; one fid figure each
    assert len(new) == 12 + 4 and set(new["metric"]) == {"fid"} and (new["n_samples"] == 16).all()
    assert np.isfinite(new["value"]).all()
    assert (tiny_run / "table.md").read_text().startswith("# FID tables")  # the run now decides on FID
    out = capsys.readouterr().out
    assert "started synthetic-svae-s0" in out and "2/2 trials done" in out
    # the same command again: everything is there, nothing is recomputed or written
    assert rescore_main(argv) == 0
    assert "skipped synthetic-svae-s0" in capsys.readouterr().out
    pd.testing.assert_frame_equal(pd.read_csv(tiny_run / "results.csv"), after)


@pytest.mark.slow
def test_rescore_compared_only_adds_inception_rows_at_each_models_own_sampler(tiny_run, tmp_path, inception_weights):
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    before = pd.read_csv(run / "results.csv")
    # KID: a figure the other re-score tests do not add to the shared tiny run
    argv = [str(run), "--fid-backbone", "inception", "--fid-weights", str(inception_weights), "--metrics", "kid",
            "--compared-only", "--fid-threads", "2"]
    assert rescore_main(argv) == 0
    after = pd.read_csv(run / "results.csv")
    new = after[after["metric"] == "kid"]
    # the SVAE at the GMM (4 outputs) and the two-stage VAE at its second stage: the claims' outputs only
    assert sorted(zip(new["model"], new["sampler"], new["output"])) == sorted(
        [("svae", "gmm", o) for o in ("x_hat", "x1", "x2", "mix")] + [("two-stage", "second-stage", "x_hat")])
    assert set(new["extractor"]) == {"inception-fid"}
    pd.testing.assert_frame_equal(after[after["metric"] != "kid"].reset_index(drop=True), before)
    manifest = json.loads((run / "manifest.json").read_text())  # the re-score's time, beside the run's
    last = manifest["rescores"][-1]
    assert (last["backbone"], last["metrics"], last["compared_only"]) == ("inception", ["kid"], True)
    assert last["wall_s"] > 0 and last["last_seen"] >= last["started"] and manifest["rescores_unmeasured"] == 0
    assert manifest["rescore_wall_s"] == round(sum(s["wall_s"] for s in manifest["rescores"]), 1)


@pytest.mark.slow
def test_rescore_adds_the_current_memorisation_figure_to_a_run_that_has_the_first_versions(tiny_run, tmp_path):
    from bench.memorisation import EXTRACTOR_ID
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    for rows_file in run.glob("trials/*/rows.json"):  # as the first version wrote them
        rows = json.loads(rows_file.read_text())
        rows_file.write_text(json.dumps([{**r, "extractor_id": "pixels:l2"} if r["extractor"] == "pixels" else r
                                         for r in rows]))
    results = pd.read_csv(run / "results.csv")
    results.loc[results["extractor"] == "pixels", "extractor_id"] = "pixels:l2"
    results.to_csv(run / "results.csv", index=False)
    assert rescore_main([str(run), "--compared-only"]) == 0  # every other figure is there already
    after = pd.read_csv(run / "results.csv")
    added = after[after["extractor_id"] == EXTRACTOR_ID]
    assert sorted(zip(added["model"], added["sampler"])) == [("svae", "gmm"), ("two-stage", "second-stage")]
    pd.testing.assert_frame_equal(after[after["extractor_id"] != EXTRACTOR_ID].reset_index(drop=True), results)


@pytest.mark.slow
def test_reproduce_trains_a_trial_again_and_finds_every_figure_and_a_changed_one(tiny_run, tmp_path, monkeypatch,
                                                                                inception_weights, capsys):
    from bench.metrics import METRICS
    from bench.metrics.scoring import Metric

    def not_stored(*args):
        raise AssertionError("reproduce computed FID at infinity, a figure the run did not store")

    # the run stored no FID at infinity: reproduce must not compute it (minutes a sample set on 2048-d Inception)
    monkeypatch.setitem(METRICS, "fidinf", Metric(not_stored, METRICS["fidinf"].names))
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    weights = ["--fid-weights", str(inception_weights)]
    assert rescore_main([str(run), "--fid-backbone", "inception", "--compared-only", "--metrics", "fid", *weights]) == 0
    cache = shutil.copytree(run / "ray" / "fid-cache", tmp_path / "cache")  # its classifier; outside the run
    argv = [str(run), "synthetic-svae-s0", "--fid-cache", str(cache), *weights]
    rows_file = run / "trials" / "synthetic-svae-s0" / "rows.json"
    stored = json.loads(rows_file.read_text())
    assert {r["extractor"] for r in stored} == {"domain-synthetic-v3", "inception-fid", "pixels"}
    changed = next(r for r in stored if r["extractor"] == "inception-fid" and r["metric"] == "fid")
    changed["value"] *= 1.001  # one stored figure off by 1e-3: the one difference reproduce must find
    rows_file.write_text(json.dumps(stored))
    before = _snapshot(run)
    assert reproduce_main(argv) == 1
    out, err = capsys.readouterr()
    figures = [line for line in out.splitlines() if "relative difference" in line and "stored figures" not in line]
    assert len(figures) == len(stored) + 5  # every stored figure and the training's 5 final figures
    assert "not made" not in out, [line for line in figures if "not made" in line]
    # all the others made again bit for bit (one process, the run's threads)
    assert sum(line.endswith("relative difference 0.0e+00") for line in figures) == len(stored) + 4
    assert f"synthetic-svae-s0: {len(stored) + 5} stored figures; the largest relative difference 1.0e-03" in out
    assert err.startswith("error: synthetic-svae-s0 was not reproduced within 1e-06") and err.count("\n") == 1
    assert _snapshot(run) == before
    assert reproduce_main([str(run), "synthetic-svae-s9"]) == 2  # not a trial of the run: one line
    err = capsys.readouterr().err
    assert err.startswith("error: 'synthetic-svae-s9' is not a trial of") and err.count("\n") == 1


def _snapshot(folder: Path) -> dict:
    return {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}


@pytest.mark.slow
@pytest.mark.parametrize("damage", ["no run", "missing checkpoint", "missing weights", "unknown metric", "no threads"])
def test_rescore_bad_input_is_one_line_and_changes_nothing(tiny_run, tmp_path, capsys, damage):
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    argv = [str(run)]
    if damage == "no run":
        argv = [str(tmp_path / "nowhere")]
    elif damage == "missing checkpoint":
        next(run.glob("trials/*/checkpoint-final-*.pt")).unlink()
    elif damage == "missing weights":
        argv += ["--fid-backbone", "inception", "--fid-weights", str(tmp_path / "none.pth")]
    elif damage == "no threads":
        argv += ["--fid-threads", "0"]
    else:
        argv += ["--metrics", "is"]
    before = _snapshot(run)
    assert rescore_main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1
    assert damage != "no threads" or "--fid-threads must be at least 1" in err
    assert _snapshot(run) == before


@pytest.mark.slow
def test_a_new_metric_reaches_results_tables_and_rescore_through_one_registry_line(tiny_run, capsys, monkeypatch):
    from bench.metrics import METRICS
    from tests.toy_metric import MEAN_GAP
    monkeypatch.setitem(METRICS, "mean_gap", MEAN_GAP)  # the registry line
    before = pd.read_csv(tiny_run / "results.csv")
    assert rescore_main([str(tiny_run), "--metrics", "mean_gap"]) == 0
    after = pd.read_csv(tiny_run / "results.csv")
    new = after[after["metric"] == "mean_gap_domain"]
    # svae: 3 samplers x 4 outputs; two-stage: 4 samplers x 1 output; one figure each
    assert len(new) == 12 + 4 and len(after) == len(before) + len(new)
    assert (new["value"] >= 0).all() and not new["higher_is_better"].any()
    assert "mean_gap_domain ↓" in (tiny_run / "table.md").read_text()
    assert "mean_gap_domain" in set(pd.read_csv(tiny_run / "table.csv")["metric"])
    capsys.readouterr()
    assert rescore_main([str(tiny_run), "--metrics", "mean_gap"]) == 0  # its figures are known: nothing to do
    assert "skipped synthetic-svae-s0" in capsys.readouterr().out


def test_a_session_killed_outright_counts_up_to_its_last_finished_trial(tmp_path):
    killed = {"started": "2026-12-07T00:18:10+0000", "wall_s": None, "last_seen": "2026-12-07T02:21:50+0000"}
    killed_before_any_trial = {"started": "2026-12-07T02:30:00+0000", "wall_s": None}
    (tmp_path / "manifest.json").write_text(json.dumps({"sessions": [killed, killed_before_any_trial]}))
    bench.rundir.note_progress(tmp_path)  # the session now running: a trial of it finished
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["sessions"][0] == killed and manifest["sessions"][1]["last_seen"]
    assert manifest["sessions_unmeasured"] == 2

    manifest["sessions"][1] = killed_before_any_trial  # as if that session had been killed before a trial ended
    (tmp_path / "manifest.json").write_text(json.dumps({**manifest, "sessions": manifest["sessions"] + [
        {"started": "2026-12-07T02:46:26+0000", "wall_s": None}]}))
    bench.rundir.close_session(tmp_path, 1817.6)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    # 00:18:10 to 02:21:50 is 2 h 3 min 40 s = 7420 s; the session with no finished trial counts nothing
    assert manifest["wall_time_s"] == 7420 + 1817.6 and manifest["sessions_unmeasured"] == 2


def test_a_session_counts_as_unmeasured_from_its_start():
    """A session killed before its first finished trial leaves the totals as open_session wrote them."""
    closed = {"started": "2026-12-07T00:00:00+0000", "wall_s": 100.0}
    manifest = bench.rundir.open_session({"sessions": [closed], "wall_time_s": 100.0, "sessions_unmeasured": 0})
    assert manifest["sessions"][-1]["wall_s"] is None
    assert (manifest["wall_time_s"], manifest["sessions_unmeasured"]) == (100.0, 1)
    rescored = bench.rundir.open_session(manifest, "rescores", backbone="inception")
    assert (rescored["rescore_wall_s"], rescored["rescores_unmeasured"]) == (0.0, 1)
    assert rescored["rescores"][0]["backbone"] == "inception" and rescored["sessions"] == manifest["sessions"]
