"""The seams through which the cost tools drive the production code (bench/seams.py): the simulation's
stand-in trial runs as a trial does, the stopwatch keeps what the benchmarks read, and no production
module assigns to another module's attributes (the patching these seams replace)."""
import ast
import json
import time
from pathlib import Path

import pytest

from bench.cost.simulated_trial import SIMULATED_EPOCHS, simulated_trial
from bench.cost.stopwatch import Stopwatch
from bench.models import MODELS
from bench.presets import smoke
from bench.trial import Evaluation, TrialSpec
from svae.samplers import samplers_for

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("bench", "svae", "baselines", "reports")
# settings that are meant to be set: the interpreter's (sys.argv for a subcommand, sys.unraisablehook), the
# process environment (Ray reads it), and torch's documented switches (TF32 off in the benchmarks)
SETTINGS = ("sys.", "os.environ", "torch.backends.")


def test_the_stand_in_trial_writes_a_trials_files_and_a_finished_one_is_not_redone(tmp_path):
    spec, settings = TrialSpec("mnist", "svae", 3), smoke("mnist")
    reports = []
    rows = simulated_trial(spec, settings, Evaluation(), tmp_path, lambda m, folder: reports.append(m),
                           seconds=0.04, checkpoint_bytes=1000)
    outputs = MODELS["svae"].outputs
    assert len(rows) == len(samplers_for("svae")) * len(outputs)
    assert {r["metric"] for r in rows} == {"fd_simulated"} and {r["value"] for r in rows} == {53.0}
    assert [m["epoch"] for m in reports[:-1]] == list(range(1, SIMULATED_EPOCHS + 1))
    assert reports[-1]["done"] and json.loads((tmp_path / "rows.json").read_text()) == rows
    assert (tmp_path / "checkpoint-simulated.pt").stat().st_size > 1000
    for sampler in samplers_for("svae"):
        assert (tmp_path / "samples" / f"{sampler}.npz").exists() and (tmp_path / "preview" / f"{sampler}.png").exists()

    again = []
    started = time.perf_counter()
    assert simulated_trial(spec, settings, Evaluation(), tmp_path, lambda m, folder: again.append(m),
                           seconds=60, checkpoint_bytes=1000) == rows  # restored: no 60 s sleep
    assert time.perf_counter() - started < 30
    assert again == [{"done": True, "attempt_id": reports[-1]["attempt_id"]}]


def test_the_stopwatch_adds_up_each_steps_time_and_calls_and_keeps_trial_events():
    clock = Stopwatch()
    for _ in range(2):
        with clock.span("write_results"):
            time.sleep(0.01)
    with pytest.raises(RuntimeError), clock.span("sweep"):  # a step that fails is timed too
        raise RuntimeError
    clock.event("t0", "started")
    assert clock.calls == {"write_results": 2, "sweep": 1}
    assert clock.seconds["write_results"] >= 0.02
    assert set(clock.figures()) == {"write_results_started", "write_results_s", "sweep_started", "sweep_s"}
    assert set(clock.events) == {"t0"} and clock.events["t0"]["started"] <= time.time()


def assignments_to_imported_names(source: str) -> list:
    """(line, target) of every assignment to an attribute or item of a name that an import binds."""
    tree = ast.parse(source)
    imported = {alias.asname or alias.name.split(".")[0] for node in ast.walk(tree)
                if isinstance(node, (ast.Import, ast.ImportFrom)) for alias in node.names}
    found = []
    for node in ast.walk(tree):
        targets = node.targets if isinstance(node, ast.Assign) else \
            [node.target] if isinstance(node, (ast.AugAssign, ast.AnnAssign)) else []
        for target in targets:
            root = target
            while isinstance(root, (ast.Attribute, ast.Subscript)):
                root = root.value
            if target is not root and isinstance(root, ast.Name) and root.id in imported \
                    and not ast.unparse(target).startswith(SETTINGS):
                found.append((node.lineno, ast.unparse(target)))
    return found


def test_the_check_finds_a_patch():
    assert assignments_to_imported_names("import bench.sweep\nbench.sweep.trainable = f\n") == \
        [(2, "bench.sweep.trainable")]
    assert assignments_to_imported_names("from bench import presets\npresets.PRESETS['x'] = f\n") == \
        [(2, "presets.PRESETS['x']")]
    assert assignments_to_imported_names("import sys\nsys.argv = []\nx = 1\nself.a = 2\n") == []


def test_no_production_module_assigns_to_another_modules_attributes():
    paths = [path for package in PACKAGES for path in sorted((ROOT / package).rglob("*.py"))]
    found = {str(path.relative_to(ROOT)): hits for path in paths
             if (hits := assignments_to_imported_names(path.read_text()))}
    assert found == {}
