"""GPUs per trial, per dataset: `--gpus-per-trial 1`, or `mnist=0.25 cifar10=0.25 celeba=1`.

A sweep's trials need not all take the same share of a GPU: small networks (MNIST, CIFAR-10) pack
four to a GPU with more throughput than one alone, a CelebA trial does not (docs/scaling.md, the
H200 measurement). So a share is given per dataset; a plain number is the share of every dataset
not named. The result is one mapping, dataset -> GPUs, for every dataset of the sweep; until the
cluster is known it may be None (bench.run then gives a GPU per trial where the cluster has GPUs).
"""
import math

from svae.data import SPECS
from svae.errors import HarnessError, choose

FLAG = "--gpus-per-trial"


def gpu_shares(values: list | None, datasets: list) -> dict | None:
    """dataset -> GPUs per trial from the flag's words ("0.5", "celeba=1"), for every dataset of the
    sweep; None when the flag was not given."""
    if values is None:
        return None
    if not values:
        raise HarnessError(f"{FLAG} is empty; give one number for every dataset, or DATASET=GPUS (e.g. mnist=0.25)")
    plain, named = [], {}
    for word in values:
        name, _, number = word.rpartition("=")
        share = _share(word, number)
        if not name:
            plain.append(share)
            continue
        choose("dataset", name, SPECS)
        if name not in datasets:
            raise HarnessError(f"{FLAG} {word}: {name} is not among --datasets ({', '.join(datasets)}); "
                               f"drop it or add it to --datasets")
        if name in named:
            raise HarnessError(f"{FLAG} names {name} twice; give each dataset one share")
        named[name] = share
    if len(plain) > 1:
        raise HarnessError(f"{FLAG} has {len(plain)} plain numbers ({', '.join(f'{p:g}' for p in plain)}); give one "
                           f"for every dataset not named, and DATASET=GPUS for the others")
    missing = [d for d in datasets if d not in named]
    if missing and not plain:
        raise HarnessError(f"{FLAG} gives no share for {', '.join(missing)}; add {missing[0]}=GPUS, or one plain "
                           f"number for every dataset not named")
    return {d: named.get(d, plain[0] if plain else None) for d in datasets}


def _share(word: str, number: str) -> float:
    try:
        share = float(number)
    except ValueError:
        raise HarnessError(f"{FLAG} {word}: {number!r} is not a number; give GPUS or DATASET=GPUS "
                           f"(e.g. 1, or mnist=0.25)") from None
    if not 0 <= share < math.inf:
        raise HarnessError(f"{FLAG} must be finite and not negative (got {number})")
    if share > 1 and share != int(share):
        raise HarnessError(f"{FLAG} {word}: more than one GPU must be a whole number (Ray places a fraction "
                           f"on one GPU); give {math.ceil(share)} or at most 1")
    return share


def per_dataset(shares, datasets) -> dict:
    """dataset -> GPUs from a mapping, or from one number (or None: no GPU) for them all."""
    if isinstance(shares, dict):
        return {d: shares[d] for d in datasets}
    return {d: shares or 0.0 for d in datasets}


def describe(shares: dict) -> str:
    """'0.25 GPU (mnist, cifar10), 1 GPU (celeba)', or '1 GPU' / 'no GPU' when they are all one."""
    groups = {}
    for dataset, share in shares.items():
        groups.setdefault(share, []).append(dataset)
    if len(groups) == 1:
        return _gpus(next(iter(groups)))
    return ", ".join(f"{_gpus(share)} ({', '.join(names)})" for share, names in groups.items())


def _gpus(share: float) -> str:
    return f"{share:g} GPU" if share else "no GPU"


def trial_resources(config: dict, cpus: float, shares: dict):
    """Ray Tune's resource request for one trial of the grid (tune.with_resources' callable form):
    its CPUs and its dataset's GPUs."""
    from ray.tune import PlacementGroupFactory
    bundle = {"CPU": cpus, "GPU": shares[config["trial"]["dataset"]]}
    return PlacementGroupFactory([{k: v for k, v in bundle.items() if v}])
