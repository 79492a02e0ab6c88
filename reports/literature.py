"""Published FIDs (reports/literature_fid.csv) and the rule that puts one beside our figures.

A published figure sits in a table beside ours only where its protocol is ours (`differences` is
empty): the same dataset, sampler and output (stated, not "unknown"), the same number of generated
images N (stated: FID is biased by N), and FID's Inception network (TF inception-2015-12-05, which
pytorch-fid ports; a "?" marks a source that does not say so for certain). Every other published
figure of the table's datasets and sampler is listed under the table with how its protocol differs,
never in a column beside ours.
"""
import csv
from pathlib import Path

LITERATURE = Path(__file__).with_name("literature_fid.csv")
OUR_INCEPTION = "tf-2015-12-05"  # pytorch-fid's port of the TF 2015-12-05 Inception = "inception-fid"
UNKNOWN = "unknown"  # the source does not state it


def published(path: Path = LITERATURE) -> list:
    """The rows of reports/literature_fid.csv as dicts of strings."""
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def differences(entry: dict, dataset: str, sampler: str, outputs, n_samples) -> list:
    """How a published row's protocol differs from ours on (dataset, sampler), where we scored outputs
    at N in n_samples; empty: it matches and may sit beside our figures."""
    found = []
    if entry["dataset"] != dataset:
        found.append(f"dataset {entry['dataset']}, not {dataset}")
    for what, theirs, ours in (("sampler", entry["sampler"], [sampler]), ("output", entry["output"], outputs)):
        if theirs == UNKNOWN:
            found.append(f"{what} not stated")
        elif theirs not in ours:
            found.append(f"{what} {theirs}, not {' or '.join(map(str, ours))}")
    ns = sorted({int(n) for n in n_samples})
    if not entry["n_samples"]:
        found.append("N not stated")
    elif int(entry["n_samples"]) not in ns:
        found.append(f"N={entry['n_samples']}, not {' or '.join(map(str, ns)) or 'ours'}")
    if entry["inception"] == OUR_INCEPTION + "?":
        found.append("Inception network not stated for certain")
    elif entry["inception"] != OUR_INCEPTION:
        found.append(f"another Inception network ({entry['inception']})")
    return found
