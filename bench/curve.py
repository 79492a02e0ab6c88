"""Quality against epochs: one seed of a model trained at a preset's settings, scored every few epochs.

The evidence behind a preset's epoch count (bench/presets.py `cpu`): each model is trained once with
the preset's network, batch size and learning rate for --epochs, and after every --every-th epoch
its own sampler (the registry's compared_at) draws --samples images, scored with the preset's
metrics. By default (--reference validation) the model trains on the training images less a held-out
part carved from their end, as the search does (bench/search.py validation_split), and is scored
against that part: the epochs are chosen without looking at the test split, which the study's figures
use. --reference test scores against the test split instead (how the committed calibration was made).
The scoring runs on a forked random stream and puts the model back in training mode, so training goes
on exactly as if it had not been scored: for a preset without a learning-rate schedule (lr_halving
None, as every preset) the curve at epoch k is the model that a k-epoch trial trains.

    python -m bench.curve --dataset mnist --preset cpu --models vae svae --epochs 12 --every 2 --out curve-mnist

writes curve.csv there (long format: model, epoch, train_seconds, images_per_s and results.csv's
scoring columns: sampler, output, metric, value, ...; rewritten after each model), curve.png (x_hat
against epochs) and levelled.json: the epoch where each model's curve levels off, by the reports' rule
(reports/budget.py LEVELLED: no later epoch improves x_hat's score by that share or more), and the
latest of them, the epoch count the curve supports for every model it trained. Its x1 and x2 are the
decoder's raw channels: the per-seed orientation of a trial (svae/samplers.py orient_components) is
not applied.
"""
if __name__ == "__main__":  # first, so that Ctrl-C while the imports below load is one line
    from svae.interrupt import quiet_until_main
    quiet_until_main()

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

import pandas as pd

from bench.models import MODELS, build_model
from bench.overrides import apply_overrides, parse_overrides, typed_overrides
from bench.presets import Settings, settings_for
from bench.search import validation_split
from bench.settings_check import check_settings
from bench.trial import Evaluation, TrialSpec, load_data, make_scorer, score_now, scored_epoch, train_config
from reports.budget import LEVELLED, levelled_epoch
from svae.command import HelpFormatter, run_command
from svae.data import SPECS, check_dataset
from svae.errors import HarnessError, NonFiniteLossError, choose
from svae.interrupt import interrupts_raise
from svae.io import atomic_write_json, atomic_write_text, writable_folder
from svae.trainer import Trainer, seed_everything


def curve_data(spec: TrialSpec, settings, evaluation: Evaluation, scorer, split: str) -> tuple:
    """(images to train on, held-out images, the Reference they are scored against) for --reference split,
    the same for every model of the curve; more samples than held-out images is refused before any work."""
    from bench.metrics import reference_from_features
    train, test = load_data(spec, settings, evaluation)
    train, held_out = (train, test) if split == "test" else validation_split(train, settings)
    if settings.fid_samples > len(held_out):
        raise HarnessError(f"--samples {settings.fid_samples} is larger than {spec.dataset}'s {split} images "
                           f"({len(held_out)}), the reference; pass --samples {len(held_out)} or less")
    if split == "test":
        return train, held_out, scorer.reference(spec.dataset, evaluation.reference_split, settings.fid_samples,
                                                 SPECS[spec.dataset].preprocessing)
    return train, held_out, reference_from_features(scorer.features(held_out, spec.dataset), spec.dataset,
                                                    "validation")


def curve(spec: TrialSpec, settings, every: int, split: str, scorer, data: tuple) -> list:
    """Train the model's stages on data (curve_data); score every `every`-th epoch of its last stage (and
    its last epoch)."""
    train, held_out, reference = data
    seed_everything(spec.seed)
    model = build_model(spec.model, SPECS[spec.dataset], settings.model)
    stages = model.stages()
    rows, trained = [], 0.0
    for stage in stages:
        config = train_config(settings, stage, spec.seed)

        def on_epoch_end(history, last=stage is stages[-1], epochs=config.epochs):
            nonlocal trained
            trained += history[-1]["seconds"]
            epoch = history[-1]["epoch"]
            if last and scored_epoch(epoch, epochs, every):
                found = score_now(model, spec, settings, scorer, train, held_out, reference)
                rows.extend({"model": spec.model, "epoch": epoch, "reference": split,
                             "train_seconds": round(trained, 1),
                             "images_per_s": history[-1]["images_per_s"], **r} for r in found)
                print(f"{spec.model} epoch {epoch}: " + ", ".join(
                    f"{r['output']} {r['metric']} {r['value']:.4g}" for r in found if r["metric"] in SHOWN),
                      flush=True)

        Trainer(config, on_epoch_end=on_epoch_end).fit(stage.module, stage.make_data(train), stage.batch_transform)
    return rows


SHOWN = ("fd_domain", "kd_domain", "fid", "kid")  # printed and plotted (x_hat only: the output every model has)


def levelled(table: pd.DataFrame) -> dict:
    """Where each model's x_hat score levels off (reports/budget.py levelled_epoch), and the latest of
    those: the epochs every model needs; None while any model is still improving at the curve's end."""
    x_hat = table[(table["output"] == "x_hat") & table["metric"].isin(SHOWN)]
    metric = next(m for m in SHOWN if m in set(x_hat["metric"]))
    scored = x_hat[x_hat["metric"] == metric]
    sign = 1 if scored["higher_is_better"].iloc[0] else -1
    models = {model: levelled_epoch([int(e) for e in part["epoch"]], list(part["value"]), sign)
              for model, part in scored.groupby("model", sort=False)}
    epochs = None if None in models.values() else max(models.values())
    return {"metric": metric, "output": "x_hat", "levelled_share": LEVELLED, "models": models, "epochs": epochs}


def plot(table: pd.DataFrame, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    metrics = list(dict.fromkeys(table["metric"]))
    fig, axes = plt.subplots(1, len(metrics), figsize=(3.2 * len(metrics), 3), squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        for model, part in table[table["metric"] == metric].groupby("model", sort=False):
            ax.plot(part["epoch"], part["value"], marker="o", label=MODELS[model].label)
        ax.set_title(f"{metric} of x_hat")
        ax.set_xlabel("epoch")
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def parse_args(argv):
    p = argparse.ArgumentParser(prog="python -m bench.curve", description=__doc__.split("\n\n")[0],
                                formatter_class=HelpFormatter)
    p.add_argument("--dataset", default="fashion-mnist", help=f"from: {', '.join(SPECS)}")
    p.add_argument("--preset", default="cpu", help="the preset whose network, batch size and learning rate train")
    p.add_argument("--models", nargs="+", default=["vae", "svae"], help=f"from: {', '.join(MODELS)}")
    p.add_argument("--seed", type=int, default=0, help="the trial seed (0 or more)")
    p.add_argument("--epochs", type=int, required=True, help="epochs to train (the curve's length)")
    p.add_argument("--every", type=int, default=2, help="score after every this many epochs")
    p.add_argument("--samples", type=int, default=2000, help="generated and reference images per score")
    p.add_argument("--reference", choices=("validation", "test"), default="validation",
                   help="score against a part held out of the training images (trained without it), or the "
                        "test split")
    p.add_argument("--set", dest="overrides", nargs="+", action="extend", default=[], metavar="KEY=VALUE",
                   help="override a preset setting, as bench.run's --set")
    p.add_argument("--data-root", default=None, help="folder holding the datasets (default: as bench.run)")
    p.add_argument("--out", required=True, help="folder for curve.csv and curve.png")
    return p.parse_args(argv)


def main(argv=None) -> int:
    interrupts_raise()
    args = parse_args(argv)
    return run_command(lambda: make_curve(args), "interrupted; curve.csv holds the models finished so far",
                       errors=(HarnessError, NonFiniteLossError))


def check_args(args):
    """The settings the curve trains with, checked with bench.run's rules before any data is read."""
    check_dataset(args.dataset)
    for name in args.models:
        choose("model", name, MODELS)
    if args.every < 1 or args.epochs < 1 or args.samples < 2 or args.seed < 0:
        raise HarnessError("--epochs and --every must be at least 1, --samples at least 2 and --seed 0 or more")
    writable_folder(args.out, "--out", "name a folder for curve.csv and curve.png")
    settings = apply_overrides(settings_for(args.preset, args.dataset),
                               typed_overrides(parse_overrides(args.overrides), Settings))
    return check_settings(replace(settings, epochs=args.epochs, fid_samples=args.samples), args.dataset)


def make_curve(args) -> int:
    settings = check_args(args)
    evaluation = Evaluation(data_root=args.data_root, system_copy=args.data_root is None,
                            fid_cache=str(Path.home() / ".cache" / "svae-bench"))
    scorer = make_scorer(settings.fid_backbone, evaluation)
    data = curve_data(TrialSpec(args.dataset, "", args.seed), settings, evaluation, scorer, args.reference)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for name in args.models:
        started = time.time()
        rows += curve(TrialSpec(args.dataset, name, args.seed), settings, args.every, args.reference, scorer, data)
        print(f"{name}: {time.time() - started:.0f} s", flush=True)
        table = pd.DataFrame(rows)
        atomic_write_text(out / "curve.csv", table.to_csv(index=False))  # a later failure keeps it
    plot(table[table["metric"].isin(SHOWN) & (table["output"] == "x_hat")], out / "curve.png")
    found = levelled(table)
    atomic_write_json(out / "levelled.json", {**found, "reference": args.reference, "every": args.every})
    for model, epoch in found["models"].items():
        print(f"{model}: " + (f"levels off at epoch {epoch}" if epoch else "still improving at the curve's end"))
    print(f"epochs the curve supports for every model: {found['epochs'] or 'none: train a longer curve'}")
    print(f"wrote {out / 'curve.csv'}, {out / 'curve.png'} and {out / 'levelled.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
