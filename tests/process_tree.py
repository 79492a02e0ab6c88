"""Processes a test started, and their ends.

A sweep killed the way a lost machine kills it: the driver and every process it started (Ray's head
and its trial workers) at once. Killing the driver alone leaves its trial worker running for a few
seconds, and what that orphan writes (a checkpoint, a status) races whatever the test does next."""
import contextlib
import time

import psutil


def kill_process_tree(pid: int, grace: float = 120) -> None:
    """SIGKILL pid and all its descendants, then wait until none is left running. The tree is stopped
    (SIGSTOP) first, and listed again until the listing is complete: a stopped process starts no other."""
    tree = {}
    while True:
        with contextlib.suppress(psutil.NoSuchProcess):
            new = [p for p in (psutil.Process(pid), *psutil.Process(pid).children(recursive=True))
                   if p.pid not in tree]
        if not new:
            break
        for process in new:
            tree[process.pid] = process
            with contextlib.suppress(psutil.NoSuchProcess):
                process.suspend()
    for process in tree.values():
        with contextlib.suppress(psutil.NoSuchProcess):
            process.kill()
    _, alive = psutil.wait_procs(list(tree.values()), timeout=grace)
    assert not alive, [p.pid for p in alive]


def assert_all_gone(processes, grace=30):
    """None of processes (psutil.Process) is still running after grace seconds."""
    deadline = time.time() + grace
    alive = processes
    while alive and time.time() < deadline:
        alive = [p for p in alive if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
        time.sleep(0.5)
    assert not alive, [" ".join(p.cmdline()[:3]) for p in alive]
