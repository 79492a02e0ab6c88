"""A sweep killed the way a lost machine kills it: the driver and every process it started (Ray's head
and its trial workers) at once. Killing the driver alone leaves its trial worker running for a few
seconds, and what that orphan writes (a checkpoint, a status) races whatever the test does next."""
import contextlib

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
