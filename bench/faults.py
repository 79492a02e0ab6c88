"""Fault injection, for the fault-tolerance tests only (tests/test_faults.py, tests/test_sweep.py):
the SVAE_BENCH_FAULT variable, which bench.run reads and hands to every trial.

"nan:<trial_id>" makes that trial's training data NaN; "kill:<trial_id>:<epoch>" SIGKILLs its worker
process right after that epoch's checkpoint is reported (bench.run requires --checkpoint-every 0
with it), on its first attempt only.
"""
import os
import signal

import torch

from svae.errors import HarnessError

FAULT_ENV = "SVAE_BENCH_FAULT"


def check_fault(checkpoint_every: float) -> None:
    """A kill fault needs a checkpoint after every epoch, or the killed trial would have none to resume."""
    if os.environ.get(FAULT_ENV, "").startswith("kill:") and checkpoint_every != 0:
        raise HarnessError(f"{FAULT_ENV}=kill:... kills a trial right after an epoch's checkpoint: it needs "
                           f"--checkpoint-every 0")


def injected(fault: str | None, trial_id: str, train: torch.Tensor, first_attempt: bool) -> tuple:
    """(the trial's training images, the epoch after which its worker is killed, or None) under `fault`."""
    parts = (fault or "").split(":")
    if parts[:2] == ["nan", trial_id]:
        train = torch.full(train.shape, float("nan"))
    return train, int(parts[2]) if parts[:2] == ["kill", trial_id] and first_attempt else None


def kill_worker() -> None:
    os.kill(os.getpid(), signal.SIGKILL)
