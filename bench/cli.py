"""Command-line pieces of bench.run: the help formatter, and the options for the plan, overrides,
reference split and tracking (their logic lives in bench.cost.plan, bench.overrides and bench.tracking)."""
import argparse

from bench.tracking import TRACKERS
from svae.command import HelpFormatter

__all__ = ["HelpFormatter", "add_options"]


def add_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--set", dest="overrides", nargs="+", action="extend", default=[], metavar="KEY=VALUE",
                   help="override a preset setting, e.g. --set epochs=20 model.beta=4 "
                        "model.backbone.base_width=16 gmm.components=10 (part of the sweep's definition)")
    p.add_argument("--reference-split", choices=["test", "train"], default="test",
                   help="the split whose images the generated ones are compared with (and the recon sampler's inputs)")
    p.add_argument("--dry-run", action="store_true",
                   help="check the data and FID weights, print the plan and its cost from stored rates "
                        "(bench/cost/rates/, or --probe), then exit; seconds, nothing written")
    p.add_argument("--tracker", nargs="+", choices=TRACKERS, default=["none"],
                   help="also send metrics, and at the end the reports, to MLflow (a file store at <out>/mlflow) "
                        "and/or Weights & Biases (offline under <out>/wandb unless WANDB_MODE says otherwise); "
                        "each needs its extra; Ray Tune's TensorBoard and CSV logs are always written (default: none)")
