"""A toy metric, as a new metric is written (docs/extending.md "A metric"): one function of features
and a Metric entry naming its figures. tests/test_run_directory.py registers it with one line."""
import numpy as np

from bench.metrics.scoring import Figure, Metric


def mean_gap_figures(ref, fake: np.ndarray, family: str, device) -> list:
    """The distance between the means of the generated and the real features: lower is better."""
    return [Figure(f"mean_gap_{family}", float(np.linalg.norm(fake.mean(axis=0) - ref.mu)), False)]


MEAN_GAP = Metric(mean_gap_figures, lambda family: (f"mean_gap_{family}",))
