"""The headline: per dataset, each model at the sampler it is compared at, best first.

A model's row is its x_hat at Run.compared_at(model) (the sampler its own paper samples with, as the
manifest's registry records it); the split model adds its two components, x1 and x2. Rows are sorted
by the deciding metric's mean in its direction (ties keep registry order); rows with no finished
seed come last. report.md and the headline figure both read these rows.
"""
from dataclasses import dataclass

from reports.rundir import Run
from reports.stats import summarize
from reports.tables import MISSING, row_label

COMPONENTS = ("x1", "x2")


@dataclass(frozen=True)
class Entry:
    model: str
    output: str
    sampler: str
    label: str  # the model's display label, with the output for the split model
    values: list  # the deciding metric per finished seed, seeds ascending
    mean: float
    std: float
    n: int
    asked: int
    split: bool  # one of the split model's outputs

    def text(self) -> str:
        if not self.n:
            return f"{MISSING} (n = 0 of {self.asked})"
        spread = "" if self.std is None else f" ± {self.std:.2f}"
        return f"{self.mean:.2f}{spread} (n = {self.n})"


def headline(run: Run, dataset: str) -> list:
    """[Entry] for a dataset, best first; models neither asked nor measured on it are left out."""
    entries = []
    for model in run.models:
        sampler = run.compared_at(model)
        split = model == run.split_model
        outputs = ["x_hat"] + [o for o in COMPONENTS if o in run.outputs(model)] if split else ["x_hat"]
        for output in outputs:
            values = list(run.seed_fids(sampler, dataset, model, output).values())
            mean, std, n = summarize(values)
            if n or run.trials(dataset, model):
                entries.append(Entry(model, output, sampler, row_label(run, model, output), values,
                                     mean, std, n, run.asked(dataset, model), split))
    sign = -1 if run.higher_is_better(run.deciding_metric) else 1
    measured = sorted((e for e in entries if e.n), key=lambda e: sign * e.mean)
    return measured + [e for e in entries if not e.n]
