"""A synthetic run directory with hand-chosen figures, for the reports tests.

Grid: datasets mnist and cifar10, models svae and vae, five seeds each.
- mnist: all SVAE seeds finished; VAE seed 4 failed (cell with n=4). SVAE seed 0's sigma is a
  checkerboard (syntactic), seeds 1-4 smooth blobs (semantic). x1 beats x_hat on every seed.
- cifar10: SVAE seeds 0-2 finished (3, 4 failed), no samples saved; x1 and x2 are worse than x_hat.
  No VAE seed finished: its cells are missing.
- prior sampler: only VAE seed 0 on mnist (a single-seed cell).
- precision (higher is better) beside FID for the mnist GMM cells: the VAE is best there.
`with_rae_beating_everything` adds an RAE far below the SVAE, for claim 2's scope.
"""
import csv
import json

import numpy as np
import pandas as pd

SEEDS = 5
# (dataset, seed) -> SVAE gmm fids by output
SVAE_GMM = {
    ("mnist", 0): {"x_hat": 20.0, "x1": 18.0, "x2": 19.0, "mix": 18.5},
    ("mnist", 1): {"x_hat": 22.0, "x1": 19.0, "x2": 21.0, "mix": 20.0},
    ("mnist", 2): {"x_hat": 21.0, "x1": 18.5, "x2": 20.0, "mix": 19.0},
    ("mnist", 3): {"x_hat": 23.0, "x1": 20.0, "x2": 22.5, "mix": 21.0},
    ("mnist", 4): {"x_hat": 19.0, "x1": 17.0, "x2": 18.0, "mix": 17.5},
    ("cifar10", 0): {"x_hat": 60.0, "x1": 62.0, "x2": 65.0, "mix": 63.0},
    ("cifar10", 1): {"x_hat": 58.0, "x1": 61.0, "x2": 59.5, "mix": 60.0},
    ("cifar10", 2): {"x_hat": 61.0, "x1": 63.0, "x2": 64.0, "mix": 62.0},
}
VAE_GMM = {("mnist", 0): 25.0, ("mnist", 1): 26.0, ("mnist", 2): 24.0, ("mnist", 3): 27.0}
VAE_PRIOR = {("mnist", 0): 30.0}
PRECISION = {("svae", "x_hat"): 0.60, ("svae", "x1"): 0.70, ("svae", "x2"): 0.65, ("svae", "mix"): 0.50,
             ("vae", "x_hat"): 0.801}  # mnist, GMM; seed s adds 0.01 * s
FAILED_ERROR = "RuntimeError: CUDA out of memory | tried to allocate 2 GiB"
COMPONENTS = "x1 is the component that sigma weights more on average (the fixture's rule)."
COMMAND = "python -m bench.run --preset paper --datasets mnist cifar10 --models svae vae"

# The manifest's record of the registries, written by hand (bench.rundir.registry_facts writes real ones).
REGISTRY = {
    "datasets": [{"name": "mnist", "label": "MNIST"}, {"name": "cifar10", "label": "CIFAR-10"}],
    "models": [{"name": "svae", "label": "SVAE", "compared_at": "gmm", "outputs": ["x_hat", "x1", "x2", "mix"],
                "literature": []},
               {"name": "vae", "label": "VAE", "compared_at": "gmm", "outputs": ["x_hat"], "literature": []},
               {"name": "two-stage", "label": "two-stage VAE", "compared_at": "second-stage",
                "outputs": ["x_hat"], "literature": []},
               {"name": "rae", "label": "RAE-L2", "compared_at": "gmm", "outputs": ["x_hat"],
                "literature": ["rae-l2"]}],
    "samplers": [{"name": "gmm", "title": "GMM sampler (ex-post Gaussian mixture, the paper's)", "models": None,
                  "description": "z from a Gaussian mixture fitted ex post to latent means mu(x)"},
                 {"name": "prior", "title": "prior sampler (z ~ N(0, I))", "models": None,
                  "description": "z ~ N(0, I)"},
                 {"name": "second-stage", "title": "second-stage sampler (two-stage VAE)",
                  "models": ["two-stage"]},
                 {"name": "recon", "title": "reconstructions of test images", "models": None}],
}

COLUMNS = ["trial_id", "dataset", "model", "seed", "sampler", "output", "metric", "value", "value_std",
           "higher_is_better", "settings", "n_samples", "reference_n", "extractor", "extractor_id",
           "weights_hash", "epochs", "final_loss", "final_recon_mse", "final_kl", "final_gamma",
           "active_units", "train_seconds"]


def checkerboard(n=8, size=32) -> np.ndarray:
    i, j = np.indices((size, size))
    return np.broadcast_to(((i + j) % 2 * 255).astype(np.uint8), (n, 1, size, size)).copy()


def blobs(n=8, size=32) -> np.ndarray:
    i, j = np.indices((size, size))
    maps = [np.exp(-((i - 10 - k) ** 2 + (j - 20 + k) ** 2) / (2 * 5.0 ** 2)) for k in range(n)]
    return (np.stack(maps)[:, None] * 255).round().astype(np.uint8)


def trial_id(dataset, model, seed) -> str:
    return f"{dataset}-{model}-s{seed}"


def make_run(root, backbone_for=lambda dataset: "inception-fid"):
    """Write the run directory under root/run and return its path."""
    run = root / "run"
    grid = [{"trial_id": trial_id(d, m, s), "dataset": d, "model": m, "seed": s}
            for d in ("mnist", "cifar10") for m in ("svae", "vae") for s in range(SEEDS)]
    manifest = {
        "name": "fixture", "created": "2024-01-01T00:00:00",
        "config": {"datasets": ["mnist", "cifar10"], "models": ["svae", "vae"], "seeds": SEEDS,
                   "preset": "paper", "command": COMMAND},
        "grid": grid,
        "protocol": {"fid_backbone": backbone_for("mnist"), "weights_hash": "6726825d",
                     "n_samples": 10000, "reference_split": "test", "reference_n": 10000,
                     "quantize": True, "resize": "bilinear to 299 inside the network",
                     "components": COMPONENTS,
                     "samplers": {"gmm": {"components": 100, "covariance": "full",
                                          "fit_on": "train"}}},
        "registry": REGISTRY, "versions": {"python": "3.11"}, "git_commit": "abc123", "host": {"cpus": 2, "gpus": []},
    }
    rows = [(d, "svae", s, "gmm", o, f) for (d, s), fids in SVAE_GMM.items() for o, f in fids.items()]
    rows += [(d, "vae", s, "gmm", "x_hat", f) for (d, s), f in VAE_GMM.items()]
    rows += [(d, "vae", s, "prior", "x_hat", f) for (d, s), f in VAE_PRIOR.items()]
    run.mkdir(parents=True)
    (run / "manifest.json").write_text(json.dumps(manifest, indent=2))
    records = []  # results.csv's rows; each finished trial also keeps its own (trials/<id>/rows.json)
    for d, m, s, sampler, o, fid in rows:
        frechet = "fid" if backbone_for(d) == "inception-fid" else "fd_domain"
        figures = [(frechet, fid, False, "")]
        if d == "mnist" and sampler == "gmm":
            figures.append(("precision", PRECISION[m, o] + 0.01 * s, True, "k=3"))
        for metric, value, higher, settings in figures:
            records.append(dict(zip(COLUMNS, [
                trial_id(d, m, s), d, m, s, sampler, o, metric, value, "", higher, settings, 10000, 10000,
                backbone_for(d), f"{backbone_for(d)}:v1-q255:6726825d", "6726825d", 3, 1.0, 0.01, 5.0, 0.01,
                10, 60.0])))
    with open(run / "results.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, COLUMNS)
        writer.writeheader()
        writer.writerows(records)
    finished = {r["trial_id"] for r in records}
    rng = np.random.default_rng(0)
    for t in grid:
        folder = run / "trials" / t["trial_id"]
        folder.mkdir(parents=True)
        ok = t["trial_id"] in finished
        (folder / "status.json").write_text(json.dumps({
            "status": "finished" if ok else "failed", "error": None if ok else FAILED_ERROR,
            "dataset": t["dataset"], "model": t["model"], "seed": t["seed"],
            "train_seconds": 60.0, "eval_seconds": 10.0}))
        if ok:
            _write_metrics(folder, t["seed"])
            (folder / "rows.json").write_text(json.dumps([r for r in records if r["trial_id"] == t["trial_id"]]))
        if ok and t["dataset"] == "mnist":
            _write_samples(folder, t["model"], t["seed"], rng)
    return run


def _write_metrics(folder, seed):
    with open(folder / "metrics.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["stage", "epoch", "loss", "recon_mse", "kl", "gamma", "active_units",
                         "seconds"])
        for epoch in range(1, 4):
            writer.writerow(["main", epoch, 100 / epoch + seed, 0.05 / epoch, 10 + epoch,
                             0.1 / epoch, 16, 1.5])


def _write_samples(folder, model, seed, rng):
    def images():
        return rng.integers(0, 256, (8, 1, 32, 32), dtype=np.uint8)

    generated = {"x_hat": images()}
    if model == "svae":
        generated.update(x1=images(), x2=images(), sigma=checkerboard() if seed == 0 else blobs())
    (folder / "samples").mkdir()
    np.savez(folder / "samples" / "gmm.npz", **generated)
    np.savez(folder / "samples" / "recon.npz", original=images(), **generated)


def with_rae_beating_everything(run, scope_recorded=True):
    """Add RAE rows (mnist, five seeds) far below the SVAE; optionally record who is purely variational."""
    table = pd.read_csv(run / "results.csv")
    vae = table[(table["model"] == "vae") & (table["dataset"] == "mnist")].copy()
    vae["model"] = "rae"
    vae["trial_id"] = [trial_id("mnist", "rae", s) for s in vae["seed"]]
    vae["value"] = 1.0 + 0.1 * vae["seed"]  # every metric: far below any SVAE figure
    pd.concat([table, vae]).to_csv(run / "results.csv", index=False)
    manifest = json.loads((run / "manifest.json").read_text())
    manifest["config"]["models"].append("rae")
    manifest["grid"] += [{"trial_id": trial_id("mnist", "rae", s), "dataset": "mnist", "model": "rae", "seed": s}
                         for s in sorted(set(vae["seed"]))]
    if scope_recorded:
        for facts in manifest["registry"]["models"]:
            facts["purely_variational"] = facts["name"] != "rae"
    (run / "manifest.json").write_text(json.dumps(manifest))
    return run
