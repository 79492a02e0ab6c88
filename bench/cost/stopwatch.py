"""A Clock (bench/seams.py) that keeps the times: each step's total seconds, calls and last start (wall
clock, which the Ray workers share), and when each trial started and completed."""
import contextlib
import time

from bench.seams import Clock


class Stopwatch(Clock):
    def __init__(self):
        self.seconds, self.calls, self.started, self.events = {}, {}, {}, {}

    @contextlib.contextmanager
    def span(self, name: str):
        self.started[name] = time.time()
        t = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - t
            self.calls[name] = self.calls.get(name, 0) + 1

    def event(self, trial_id: str, what: str) -> None:
        self.events.setdefault(trial_id, {})[what] = time.time()

    def figures(self) -> dict:
        """{"<step>_started": wall time of its last start, "<step>_s": its total seconds} of every step timed."""
        return {key: value for name in self.seconds
                for key, value in ((f"{name}_started", self.started[name]), (f"{name}_s", self.seconds[name]))}
