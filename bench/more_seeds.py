"""`--resume --seeds N` with N above the sweep's count: seeds 0..N-1, the finished trials kept.

A finished (or interrupted) sweep is one grid; the only change --resume accepts to its defining config
is more seeds, so power figures (claims.md: how many seeds a difference needs) can be acted on. The
manifest's grid and seed count grow; the trials already there keep their folders and results, and
bench/sweep.py runs every unfinished trial of the grown grid, the new seeds among them.
"""
from svae.errors import HarnessError


def seeds_added(key: str, old: dict, config: dict, resume: bool) -> bool:
    """Whether a defining key differs only because --resume asks for more seeds (allowed); fewer is an error."""
    if key != "seeds" or not resume:
        return False
    if config["seeds"] < old["seeds"]:
        raise HarnessError(f"--seeds {config['seeds']} is fewer than this sweep's {old['seeds']}; --resume keeps "
                           f"every seed: pass --seeds {old['seeds']} or more")
    return True


def grown_manifest(old: dict, config: dict, grid: list, storage: str) -> dict:
    """The resumed sweep's manifest: the storage as named now, the seeds and grid of this command."""
    known = {t["trial_id"] for t in old["grid"]}
    added = [{"trial_id": s.trial_id, "dataset": s.dataset, "model": s.model, "seed": s.seed}
             for s in grid if s.trial_id not in known]
    grown = {"seeds": config["seeds"], "seeds_list": list(range(config["seeds"]))} if added else {}
    return {**old, "config": {**old["config"], **grown, "storage": storage}, "grid": old["grid"] + added}
