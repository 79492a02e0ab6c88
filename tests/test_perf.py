"""The performance suite's arithmetic and counters, on hand-worked inputs (no timing is asserted)."""
import pytest

from bench.cost.perf import markdown_table, meets
from bench.cost.perf_sweep import CacheWatcher, sweep_figures
from svae.io import atomic_write_bytes


def test_overhead_per_trial_is_slot_time_less_the_trials_own_work():
    # Two slots for 10 s = 20 slot-seconds; two trials each spend 6 s in the trainable, of which 1 s
    # imports, 0.5 s data and 0.5 s reports: own work 4 s each, so (20 - 8) / 2 = 6 s overhead per trial.
    workers = [{"trial_id": t, "pid": 1, "entered": e, "left": e + 6, "imports_s": 1.0, "data_s": 0.5,
                "report_s": 0.5, "peak_rss_mb": rss} for t, e, rss in (("a", 101.0, 300.0), ("b", 102.0, 400.0))]
    driver = {"sweep_s": 10.0, "sweep_started": 100.0, "ray_start_s": 3.0, "driver_peak_rss_mb": 200.0,
              "events": {"a": {"started": 100.5, "completed": 107.5}, "b": {"started": 101.0, "completed": 108.5}}}
    f = sweep_figures(driver, workers, {"stats-x.npz": 1}, 15.0, {"trials": 1.0, "ray": 2.0}, 3.5, 2.5)
    assert f["overhead_s_per_trial"] == pytest.approx(6.0)
    assert f["work_s_per_trial"] == pytest.approx(4.0)
    parts = f["parts_s_per_trial"]
    assert parts["start latency (slot free -> trial started; includes worker start and imports)"] == pytest.approx(0.75)
    assert parts["trainable returned -> driver done with the trial (collection)"] == pytest.approx(0.5)
    assert f["trial_peak_rss_mb"] == 400.0 and f["workers"] == 1


def test_marginal_overhead_is_the_idle_gap_on_a_reused_worker_plus_data_and_reports():
    # Worker 1 runs a (enters 102, leaves 110) then c (enters 111.5); worker 2 runs b (enters 104)
    # then d (enters 113 after b left at 112). Gaps 1.5 and 1.0; data + reports 0.5 per trial.
    def record(t, pid, entered, left):
        return {"trial_id": t, "pid": pid, "entered": entered, "left": left, "imports_s": 0.0, "data_s": 0.25,
                "report_s": 0.25, "peak_rss_mb": 1.0}
    workers = [record("a", 1, 102.0, 110.0), record("b", 2, 104.0, 112.0), record("c", 1, 111.5, 118.0),
               record("d", 2, 113.0, 119.0)]
    events = {t: {"started": w["entered"] - 0.1, "completed": w["left"] + 0.1} for t, w in zip("abcd", workers)}
    driver = {"sweep_s": 20.0, "sweep_started": 100.0, "ray_start_s": 3.0, "driver_peak_rss_mb": 1.0, "events": events}
    f = sweep_figures(driver, workers, {}, 25.0, {"trials": 1.0, "ray": 1.0}, 2.0, 2.0)
    assert f["worker_start_s"] == pytest.approx(3.0)  # (2 + 4) / 2
    assert f["marginal_s_per_trial"] == pytest.approx(1.25 + 0.5)
    assert f["reuse_gaps"] == 2 and f["workers"] == 2


def test_cache_watcher_counts_each_write_of_a_key(tmp_path):
    watcher = CacheWatcher(tmp_path)
    atomic_write_bytes(tmp_path / "stats-a.npz", b"1")
    (tmp_path / "stats-a.npz.lock").write_text("")
    watcher.poll()
    watcher.poll()  # seen again, not written again
    atomic_write_bytes(tmp_path / "stats-b.npz", b"1")
    atomic_write_bytes(tmp_path / "stats-a.npz", b"2")  # a second computation of key a
    watcher.poll()
    assert watcher.computations() == {"stats-a.npz": 2, "stats-b.npz": 1}


def test_table_marks_each_ratio_against_its_target():
    rows = [{"benchmark": "train", "measure": "m1", "value": 1.02, "target": ["<=", 1.03]},
            {"benchmark": "train", "measure": "m2", "value": 1.2, "target": ["<=", 1.10]},
            {"benchmark": "fid", "measure": "m3", "value": 1.4, "target": [">=", 1.5]},
            {"benchmark": "memory", "measure": "m4", "value": 900.0, "target": None}]
    assert [meets(r) for r in rows] == [True, False, False, None]
    lines = markdown_table(rows).splitlines()
    assert lines[2].endswith("| 1.02 | <= 1.03 | yes |  |") and "**no**" in lines[3] and len(lines) == 6


def test_the_timed_trainable_takes_what_the_sweep_gives_the_trainable():
    """The sweep benchmark hands the sweep a timed wrapper of bench.sweep.trainable (bench/seams.py); Ray
    calls it with the trainable's parameters (tune.with_parameters), so the two signatures must not drift apart."""
    import inspect

    import bench.sweep
    from bench.cost.perf_sweep import timed_trainable
    parameters = inspect.signature(timed_trainable).parameters
    assert list(parameters) == list(inspect.signature(bench.sweep.trainable).parameters)
