"""One Trainer for every model, with no per-model branch: it uses only svae/interface.py's Trainable.

Per batch it computes out = model(x) and terms = model.loss(x, out), and minimises terms["loss"].
Per epoch it logs the mean of every term over the images, the last value of terms["gamma"] when the
model has one, and the active units counted from out["mu"].

A checkpoint is written atomically after every epoch (model, optimizer, gamma state via the model's
buffers, epoch, history and every RNG state), and `fit` resumes from it, so that on the CPU an
interrupted-and-resumed run ends with the same weights as an uninterrupted one.
"""
import contextlib
import math
import random
import time
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Callable

import numpy as np
import torch
from torch.utils.data import DataLoader, TensorDataset
from tqdm import tqdm

from svae.data import as_float
from svae.errors import HarnessError, NonFiniteLossError
from svae.io import atomic_torch_save

ACTIVE_UNIT_THRESHOLD = 0.01  # Burda et al.: a unit is active if Var_x(E[z_j | x]) > 0.01


@dataclass
class TrainConfig:
    epochs: int = 10
    batch_size: int = 100
    lr: float = 1e-4
    seed: int = 0
    device: str | None = None  # None: CUDA when present, else CPU
    amp: bool = False  # bfloat16 autocast, on CUDA only
    num_workers: int = 0
    progress: bool = True
    # Halve the learning rate every lr_halving * epochs epochs (Dai & Wipf: 150 of 400); None: constant.
    lr_halving: float | None = None
    # channels_last memory for image batches and convolutions: faster on CPUs (docs/performance.md) but
    # a different summation order, so results match a contiguous run only to round-off. The model is
    # put back in contiguous memory when fit returns, so what follows (sampling, scoring) is unchanged.
    channels_last: bool = False


def learning_rate(cfg: TrainConfig, epoch: int) -> float:
    """The learning rate of epoch 1, 2, ...: lr * 0.5 ** floor((epoch - 1) / (lr_halving * epochs)),
    Dai & Wipf's demo.py schedule (their epochs count from 0)."""
    if cfg.lr_halving is None:
        return cfg.lr
    return cfg.lr * 0.5 ** math.floor((epoch - 1) / (cfg.lr_halving * cfg.epochs))


def pick_device(name: str | None) -> torch.device:
    """The named device, or CUDA when present, else the CPU: the one place that chooses."""
    return torch.device(name or ("cuda" if torch.cuda.is_available() else "cpu"))


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2 ** 32)
    torch.manual_seed(seed)


def _seed_worker(worker_id: int) -> None:
    # torch seeds each loader worker from the loader's generator; derive the others from it
    seed = torch.initial_seed() % 2 ** 32
    random.seed(seed)
    np.random.seed(seed)


def _rng_states(shuffle: torch.Generator) -> dict:
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    return {"python": random.getstate(), "torch": torch.get_rng_state(), "shuffle": shuffle.get_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            "numpy": {"keys": torch.from_numpy(keys.astype(np.int64)), "pos": pos,
                      "has_gauss": has_gauss, "cached": cached}}


def _restore_rng_states(states: dict, shuffle: torch.Generator) -> None:
    random.setstate(states["python"])
    torch.set_rng_state(states["torch"])
    shuffle.set_state(states["shuffle"])
    if states["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])
    n = states["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached"]))


def load_checkpoint(path: Path) -> dict:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torn zip, wrong format, unpickling refused: all mean "not a checkpoint"
        raise HarnessError(f"checkpoint {path} is corrupt ({type(e).__name__}); delete it to retrain "
                           f"from scratch") from None


class Trainer:
    """Trains a Trainable (svae/interface.py) on a tensor of examples (uint8 images are scaled to
    [0, 1] per batch) with Adam at a fixed learning rate.

    Every epoch runs len(data) // batch_size full batches in a fresh shuffled order (the tail is
    dropped, as in both reference codes), so no short batch feeds gamma's running MSE or BatchNorm.
    A batch_transform, if given, maps each batch to the model's input (two-stage VAE: a fresh draw
    from the stage-1 posteriors); it draws from torch's global generator, which checkpoints save.

    epoch_scores(epoch) -> dict, if given, adds figures measured on the model after each epoch (the
    trial's quality against epochs) to that epoch's metrics before its checkpoint is written, so a
    resumed run keeps them; it must leave the model's mode and every RNG as it found them.

    on_epoch_end(history) is called with every epoch's metrics so far, after the epoch's checkpoint is
    written: the sweep reports to Ray Tune from it; the Trainer itself knows nothing about Ray.
    """

    def __init__(self, cfg: TrainConfig, checkpoint_path=None, on_epoch_end: Callable | None = None,
                 epoch_scores: Callable[[int], dict] | None = None):
        self.cfg = cfg
        self.checkpoint_path = Path(checkpoint_path) if checkpoint_path else None
        self.on_epoch_end = on_epoch_end
        self.epoch_scores = epoch_scores
        self.device = pick_device(cfg.device)

    def fit(self, model: torch.nn.Module, data: torch.Tensor, batch_transform: Callable | None = None) -> list:
        cfg = self.cfg
        if len(data) < cfg.batch_size:
            raise HarnessError(f"{len(data)} training examples are fewer than one batch of {cfg.batch_size}; "
                               f"use more data or a smaller batch size")
        seed_everything(cfg.seed)
        model.to(self.device, memory_format=self.memory_format).train()
        optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
        shuffle = torch.Generator().manual_seed(cfg.seed)
        history, start_epoch = [], 0
        if self.checkpoint_path and self.checkpoint_path.exists():
            state = load_checkpoint(self.checkpoint_path)
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            _restore_rng_states(state["rng"], shuffle)
            history, start_epoch = state["history"], state["epoch"]
        loader = DataLoader(TensorDataset(data), batch_size=cfg.batch_size, shuffle=True, generator=shuffle,
                            num_workers=cfg.num_workers, worker_init_fn=_seed_worker, drop_last=True)
        for epoch in range(start_epoch + 1, cfg.epochs + 1):
            for group in optimizer.param_groups:
                group["lr"] = learning_rate(cfg, epoch)
            metrics = self._epoch(model, optimizer, loader, epoch, batch_transform)
            metrics["lr"] = optimizer.param_groups[0]["lr"]
            if self.epoch_scores:
                metrics.update(self.epoch_scores(epoch))
            history.append(metrics)
            if self.checkpoint_path:
                atomic_torch_save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                                   "epoch": epoch, "history": history, "rng": _rng_states(shuffle)},
                                  self.checkpoint_path)
            if self.on_epoch_end:
                self.on_epoch_end(history)
        model.to(memory_format=torch.contiguous_format)
        return history

    @property
    def memory_format(self) -> torch.memory_format:
        return torch.channels_last if self.cfg.channels_last else torch.contiguous_format

    def _autocast(self):
        if self.cfg.amp and self.device.type == "cuda":
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def _epoch(self, model, optimizer, loader, epoch: int, batch_transform) -> dict:
        started = time.perf_counter()
        totals, means, seen = {}, [], 0
        losses = torch.empty(len(loader), device=self.device)
        bar = tqdm(loader, desc=f"epoch {epoch}", leave=False, disable=not self.cfg.progress)
        for step, (batch,) in enumerate(bar):
            x = as_float(batch.to(self.device, non_blocking=True))
            if x.dim() == 4:
                x = x.contiguous(memory_format=self.memory_format)
            if batch_transform is not None:
                x = batch_transform(x)
            with self._autocast():
                out = model(x)
                terms = model.loss(x, out)
            optimizer.zero_grad(set_to_none=True)
            terms["loss"].backward()
            optimizer.step()
            losses[step] = terms["loss"].detach()
            for name, value in terms.items():
                totals[name] = totals.get(name, 0.0) + value.detach() * len(x)
            means.append(out["mu"].detach().float())
            seen += len(x)
        # One synchronisation per epoch: find the first non-finite step, if any, only now.
        bad = (~torch.isfinite(losses)).nonzero()
        if len(bad):
            raise NonFiniteLossError(f"non-finite loss at epoch {epoch}, step {int(bad[0]) + 1} of {len(loader)}")
        metrics = {name: float(total) / seen for name, total in totals.items()}
        if "gamma" in terms:  # a state, not a per-batch figure: the value at the end of the epoch
            metrics["gamma"] = float(terms["gamma"])
        mu = torch.cat(means)
        metrics["active_units"] = int((mu.var(dim=0) > ACTIVE_UNIT_THRESHOLD).sum())
        metrics["seconds"] = time.perf_counter() - started
        metrics["images_per_s"] = seen / metrics["seconds"]
        metrics["epoch"] = epoch
        return metrics
