"""Memorisation: are a model's samples nearer the images it trained on than to unseen ones?

For each generated image, the pixel (L2) distance to its nearest neighbour in the whole training split
and in the whole held-out (test) split. A model that generalises draws samples that owe nothing to
which images of the distribution went into its training set, so the nearest of all the real images
is a training image with probability `chance` = train_n / (train_n + held_out_n) (6/7 on MNIST). A
model that copies its training images has distance 0 to the training split: every copied sample
counts as nearer. The figure is `nn_train_share`, the share of samples nearer a training image
(ties count half); `copies` = (share - chance) / (1 - chance) estimates the share of samples that
copy a training image: 0 without copying, 1 for a model that returns its training images, below 0
for samples nearer the held-out images (reconstructions of test images). It is a simpler cousin of
the data-copying test of Meehan, Chaudhuri & Dasgupta (AISTATS 2020), which compares the same two
kinds of distances cell by cell. The reports flag an estimate (reports/memorisation.py).

Version "whole-splits" (the row's extractor id): every image of both splits. The first version
compared the first 5,000 images of each split (chance 1/2), so it saw only the copies of those
5,000 training images: a twelfth of MNIST's.
"""
from dataclasses import dataclass

import torch

MEMORISATION_SAMPLES = 2000  # generated images tested (the first ones of the scored set)
METRIC = "nn_train_share"
EXTRACTOR_ID = "pixels:l2-whole-splits"  # the first version's was "pixels:l2" (5,000 images of each split)


@dataclass(frozen=True)
class Memorisation:
    share: float  # samples nearer a training image than a held-out image
    chance: float  # the share expected without copying
    n: int
    train_n: int
    held_out_n: int

    @property
    def copies(self) -> float:
        """The estimated share of samples that copy a training image."""
        return (self.share - self.chance) / (1 - self.chance)


def _flat(images) -> torch.Tensor:
    images = torch.as_tensor(images)
    x = images.float() / 255 if images.dtype == torch.uint8 else images.float()
    return x.flatten(1)


def nearest(samples: torch.Tensor, reference, chunk: int = 5000) -> tuple:
    """(distance, index): the L2 distance from every row of samples (flat floats) to its nearest image of
    reference (uint8 or floats, N x C x H x W), and that image's index; the reference is read chunk by
    chunk, so a large one fits in memory; a tie keeps the earlier image."""
    distance, index = torch.full((len(samples),), float("inf")), torch.zeros(len(samples), dtype=torch.long)
    for start in range(0, len(reference), chunk):
        found = torch.cdist(samples, _flat(reference[start:start + chunk])).min(dim=1)
        nearer = found.values < distance
        distance = torch.where(nearer, found.values, distance)
        index = torch.where(nearer, found.indices + start, index)
    return distance, index


def memorisation(samples, train_images, test_images, n: int = MEMORISATION_SAMPLES) -> Memorisation:
    """Samples (floats in [0, 1] or uint8, N x C x H x W) against every training and held-out image."""
    x = _flat(samples[:n])
    to_train, _ = nearest(x, train_images)
    to_test, _ = nearest(x, test_images)
    share = float(((to_train < to_test).double() + 0.5 * (to_train == to_test).double()).mean())  # ties: half
    chance = len(train_images) / (len(train_images) + len(test_images))
    return Memorisation(share, chance, len(x), len(train_images), len(test_images))


def nearest_training(sampler: str, images, train_images, chunk: int = 5000) -> dict:
    """The record a trial's preview keeps of a sampler's first images (uint8 N x C x H x W) beside their
    nearest training images (svae/preview.py preview_of): in pixels, as the check measures, over the
    whole training set."""
    distance, index = nearest(_flat(images), train_images, chunk)
    return {"sampler": sampler, "distance": distance.tolist(), "train_index": index.tolist(),
            "train": torch.as_tensor(train_images)[index].numpy()}
