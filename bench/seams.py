"""What a sweep's driver takes as arguments where the cost tools (bench/cost/) need other parts: the
simulation's stand-ins and the benchmarks' timers come in here, so that no module patches another's
globals and no stand-in lives in the production code.

bench.run.run(args, seams) reads check_data, cost and scores_of; the sweep (bench/sweep.py, through
SweepPlan.seams) reads trainable, trial and clock. None is the real thing, named where it is used:
those live in modules that import Ray or bench.run, which this one must not.
"""
import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field


class Clock:
    """Told when a driver's step runs and when Ray starts and completes a trial; this one keeps
    nothing (bench/cost/stopwatch.py keeps the times)."""

    def span(self, name: str):
        """A context manager around the step `name`: "ray_start", "search", "sweep", "write_results"."""
        return contextlib.nullcontext()

    def event(self, trial_id: str, what: str) -> None:
        """`what` ("started" or "completed") happened to a trial, as the driver's callback saw it."""


@dataclass(frozen=True)
class Seams:
    check_data: Callable | None = None  # (args, settings) -> files read per dataset: bench.run.check_data
    cost: Callable | None = None  # (args, config, grid) -> the plan (trial_seconds(), concurrency): print_plan
    scores_of: Callable | None = None  # the search's candidates -> scores: bench.search.tune_scores
    trainable: Callable | None = None  # Ray Tune's function of a trial: bench.sweep.trainable
    trial: Callable | None = None  # what the trainable runs in its folder: bench.trial.run_trial
    clock: Clock = field(default_factory=Clock)
