"""Read a Weights & Biases offline run (<dir>/wandb/offline-run-*/run-<id>.wandb) back, for the tracker tests.

The file is W&B's 7-byte header, then LevelDB's log format (32 KiB blocks; each piece a 7-byte header:
CRC32C, length, type FULL/FIRST/MIDDLE/LAST), each whole record a wandb_internal.proto Record. The W&B
versions this project tests with have no Python reader of their own (their `wandb sync` reads it in Go).
"""
import json
import struct
from dataclasses import dataclass, field
from pathlib import Path

BLOCK = 32768
FILE_HEADER = 7
PIECE_HEADER = 7
WHOLE, LAST = 1, 4  # piece types that end a record


@dataclass
class OfflineRun:
    name: str = ""
    project: str = ""
    config: dict = field(default_factory=dict)
    history: list = field(default_factory=list)  # one dict per logged step
    artifacts: dict = field(default_factory=dict)  # name -> [file paths in it]


def _records(path: Path):
    from wandb.proto import wandb_internal_pb2

    data = path.read_bytes()
    assert data[:4] == b":W&B", f"{path} is not a W&B run file"
    pos, record = FILE_HEADER, b""
    while pos + PIECE_HEADER <= len(data):
        left = BLOCK - pos % BLOCK
        _, length, kind = struct.unpack("<IHB", data[pos:pos + PIECE_HEADER]) if left >= PIECE_HEADER else (0, 0, 0)
        if left < PIECE_HEADER or (kind == 0 and length == 0):  # a block's padding
            pos += left
            continue
        record += data[pos + PIECE_HEADER:pos + PIECE_HEADER + length]
        pos += PIECE_HEADER + length
        if kind in (WHOLE, LAST):
            parsed = wandb_internal_pb2.Record()
            parsed.ParseFromString(record)
            yield parsed
            record = b""


def offline_runs(wandb_dir: Path) -> list:
    """[OfflineRun] of every offline run under wandb_dir, as written."""
    runs = []
    for file in sorted(Path(wandb_dir).glob("offline-run-*/run-*.wandb")):
        run = OfflineRun()
        for record in _records(file):
            kind = record.WhichOneof("record_type")
            if kind == "run":
                run.name, run.project = record.run.display_name, record.run.project
                run.config = {c.key: json.loads(c.value_json) for c in record.run.config.update}
            elif kind == "history":
                run.history.append({i.key or "/".join(i.nested_key): json.loads(i.value_json)
                                    for i in record.history.item})
            elif kind == "artifact":
                run.artifacts[record.artifact.name] = [m.path for m in record.artifact.manifest.contents]
        runs.append(run)
    return runs
