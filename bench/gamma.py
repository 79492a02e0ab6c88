"""Did a learned gamma reach its optimum? The check every trial of a model that learns gamma records.

A Gaussian likelihood's learned variance gamma is optimal at the reconstruction MSE (d/dgamma of
sse / (2 gamma) + D/2 log gamma is zero at gamma = sse / D). Adam moves log gamma by about the
learning rate per step, so a short run can end with gamma far above the MSE: the KL term then weighs
more than the model intends, and the trial measures the optimiser's budget, not the model.
"""
TRACKS = "gamma tracks the MSE"
AT_LIMIT = "gamma at the optimiser's limit"
FACTOR = 2.0  # gamma within this factor of the MSE, either way, tracks it


def gamma_check(metrics: dict) -> str:
    """TRACKS or AT_LIMIT from an epoch's metrics (its final gamma and its mean reconstruction MSE)."""
    gamma, mse = metrics["gamma"], metrics["recon_mse"]
    return TRACKS if mse / FACTOR <= gamma <= mse * FACTOR else AT_LIMIT
