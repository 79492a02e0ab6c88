"""The memorisation check's null, measured: where does nn_train_share sit for a model that copies nothing?

bench/memorisation.py reads a sample's nearest real image as a training image with probability
chance = train_n / (train_n + held_out_n), which holds when the samples, the training split and the
held-out split are exchangeable. A model that learns its training distribution perfectly draws
images like training images it never saw; this script takes such images (training images held out
of the reference set) and measures their share, so the gap between the analytic chance and the
measured null is known per dataset. The test split stands in for the held-out reference as in the
reports; where the test split comes from other writers or sources than the training split (MNIST's
test writers are not its training writers), the null sits above chance.

    python scripts/memorisation_null.py --datasets mnist fashion-mnist
"""
import argparse

import torch

from bench.memorisation import MEMORISATION_SAMPLES, memorisation
from svae.data import load_images


def null_of(dataset: str, seeds: int, n: int) -> tuple:
    """(measured share, its binomial standard error, analytic chance): for each seed, n training images
    drawn at random and held out of the training reference, against the rest of the training split and
    the whole test split; the shares of all seeds pooled."""
    train = load_images(dataset, "train").images
    test = load_images(dataset, "test").images
    shares = []
    for seed in range(seeds):
        order = torch.randperm(len(train), generator=torch.Generator().manual_seed(seed))
        m = memorisation(train[order[:n]], train[order[n:]], test, n=n)
        shares.append(m.share)
    share = sum(shares) / seeds
    return share, (share * (1 - share) / (n * seeds)) ** 0.5, m.chance


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", nargs="+", default=["mnist", "fashion-mnist"])
    parser.add_argument("--seeds", type=int, default=5, help="independent draws of held-out images, pooled")
    parser.add_argument("-n", type=int, default=MEMORISATION_SAMPLES, help="training images held out")
    args = parser.parse_args(argv)
    print("dataset,n,seeds,measured_share,standard_error,analytic_chance,copies_of_the_null")
    for dataset in args.datasets:
        share, se, chance = null_of(dataset, args.seeds, args.n)
        copies = (share - chance) / (1 - chance)
        print(f"{dataset},{args.n},{args.seeds},{share:.4f},{se:.4f},{chance:.4f},{copies:+.4f}")


if __name__ == "__main__":
    main()
