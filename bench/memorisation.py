"""Memorisation: are a model's samples nearer the images it trained on than to unseen ones?

For each generated image, the pixel (L2) distance to its nearest neighbour among m training images
and among m held-out test images. A model that generalises draws samples that owe nothing to which
images of the distribution were in its training set, so by symmetry each sample is nearer a training
image than a test image with probability 1/2 (m images from each, the same distribution). A model
that copies its training images has distance 0 to the training set: every copied sample counts as
nearer. The figure is `nn_train_share`, the share of samples nearer a training image: 0.5 means no
sign of copying, 0.5 + c / 2 for a share c of exact copies; reconstructions of test images fall
below 0.5, the more faithful the lower (0.41-0.48 in a smoke run: blurry ones stay near 0.5). It is
a simpler cousin of the data-copying test of Meehan, Chaudhuri & Dasgupta (AISTATS 2020), which
compares the same two kinds of distances cell by cell. The reports flag a figure
(reports/memorisation.py).
"""
from dataclasses import dataclass

import torch

MEMORISATION_SAMPLES = 1000  # generated images tested (the first ones of the scored set)
MEMORISATION_REFERENCE = 5000  # images of each of the training and held-out sets searched
METRIC = "nn_train_share"


@dataclass(frozen=True)
class Memorisation:
    share: float  # samples nearer a training image than a held-out image
    median_ratio: float  # median over samples of (nearest training distance) / (nearest held-out distance)
    n: int
    reference_n: int


def _flat(images) -> torch.Tensor:
    images = torch.as_tensor(images)
    x = images.float() / 255 if images.dtype == torch.uint8 else images.float()
    return x.flatten(1)


def nearest_distances(samples: torch.Tensor, reference: torch.Tensor, chunk: int = 500) -> torch.Tensor:
    """The L2 distance from every row of samples to its nearest row of reference."""
    return torch.cat([torch.cdist(part, reference).min(dim=1).values for part in samples.split(chunk)])


def memorisation(samples, train_images, test_images, n: int = MEMORISATION_SAMPLES,
                 reference_n: int = MEMORISATION_REFERENCE) -> Memorisation:
    """Samples (floats in [0, 1] or uint8, N x C x H x W) against the first reference_n training and
    held-out images (as many of each: the symmetry needs equal sets)."""
    m = min(reference_n, len(train_images), len(test_images))
    x = _flat(samples[:n])
    to_train = nearest_distances(x, _flat(train_images[:m]))
    to_test = nearest_distances(x, _flat(test_images[:m]))
    share = float(((to_train < to_test).double() + 0.5 * (to_train == to_test).double()).mean())  # ties: half
    ratio = float((to_train / to_test.clamp_min(1e-12)).median())
    return Memorisation(share, ratio, len(x), m)


def nearest_training(sampler: str, images, train_images, chunk: int = 5000) -> dict:
    """The record a trial's preview keeps of a sampler's first images (uint8 N x C x H x W) beside their
    nearest training images (svae/preview.py preview_of): in pixels, as the check measures, but over
    the whole training set, read chunk by chunk so that a large one fits in memory."""
    x = _flat(images)
    distance, index = torch.full((len(x),), float("inf")), torch.zeros(len(x), dtype=torch.long)
    for start in range(0, len(train_images), chunk):
        found = torch.cdist(x, _flat(train_images[start:start + chunk])).min(dim=1)
        nearer = found.values < distance  # a tie keeps the earlier training image
        distance = torch.where(nearer, found.values, distance)
        index = torch.where(nearer, found.indices + start, index)
    return {"sampler": sampler, "distance": distance.tolist(), "train_index": index.tolist(),
            "train": torch.as_tensor(train_images)[index].numpy()}
