"""The datasets' file formats, read whole with every size checked, or counted without decoding the
images (what a dry run needs): IDX (MNIST, Fashion-MNIST) and CIFAR-10's python batches.

IDX: two zero bytes, a dtype code, the number of dimensions, then each dimension as a big-endian
uint32; the data follow. A gzip file's last 4 bytes (ISIZE) hold its uncompressed size modulo 2^32,
so a truncated .gz is found without decompressing it. CIFAR-10: pickled dicts of CIFAR_BATCH images
each, unpickled with only NumPy's array classes allowed.
"""
import gzip
import pickle
import struct
from pathlib import Path

import numpy as np

from svae.errors import HarnessError

# ---------------------------------------------------------------- IDX (MNIST and Fashion-MNIST)

IDX_FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
             "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}
_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
FIX = "delete it and download again (--download), or put an intact copy there"


def _header(path: Path, data: bytes) -> tuple:
    """(shape, dtype, header length) from the start of an IDX file's bytes."""
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _DTYPES:
        raise HarnessError(f"{path} is not an IDX file (bad magic number); {FIX}")
    length = 4 + 4 * data[3]
    if len(data) < length:
        raise HarnessError(f"IDX file {path} is truncated (incomplete header); {FIX}")
    return struct.unpack(f">{data[3]}I", data[4:length]), np.dtype(_DTYPES[data[2]]), length


def _check_size(path: Path, shape: tuple, dtype, data_bytes: int) -> None:
    expected = int(np.prod(shape)) * dtype.itemsize
    if data_bytes != expected:
        raise HarnessError(f"IDX file {path} is truncated or padded: {data_bytes} bytes of data, "
                           f"{expected} expected for shape {shape}; {FIX}")


def read_idx(path: Path) -> np.ndarray:
    """An IDX file (plain or .gz), with its declared size checked against its content."""
    try:
        data = gzip.open(path, "rb").read() if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError) as e:
        raise HarnessError(f"cannot read IDX file {path} ({e}); {FIX}") from None
    shape, dtype, length = _header(path, data)
    _check_size(path, shape, dtype, len(data) - length)
    return np.frombuffer(data, dtype, offset=length).reshape(shape)


def idx_shape(path: Path) -> tuple:
    """An IDX file's declared shape, its size checked from the file's length (plain) or its gzip
    trailer (.gz, up to 4 GiB), without reading its data."""
    try:
        with (gzip.open if path.suffix == ".gz" else open)(path, "rb") as f:
            start = f.read(4 + 4 * 255)  # the longest header there is
        with open(path, "rb") as f:
            f.seek(-4, 2)
            trailer = f.read(4)
    except (OSError, EOFError) as e:
        raise HarnessError(f"cannot read IDX file {path} ({e}); {FIX}") from None
    shape, dtype, length = _header(path, start)
    gz = path.suffix == ".gz"
    data_bytes = (struct.unpack("<I", trailer)[0] if gz else path.stat().st_size) - length
    expected = int(np.prod(shape)) * dtype.itemsize
    # ISIZE is the uncompressed length modulo 2^32: compare modulo 2^32, then report the declared size
    _check_size(path, shape, dtype, expected if gz and (data_bytes - expected) % 2 ** 32 == 0 else data_bytes)
    return shape


def find_idx(folders, stem: str, how_to_get: str) -> Path:
    for folder in folders:
        for candidate in (folder / stem, folder / f"{stem}.gz"):
            if candidate.exists():
                return candidate
    raise HarnessError(f"missing {stem}[.gz]: looked in {', '.join(map(str, folders))}; {how_to_get}")


# ---------------------------------------------------------------- CIFAR-10 (pickle batches)

CIFAR_BATCH = 10000  # images in each batch file of the python version


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles plain containers and NumPy arrays only: a batch file cannot run code."""
    _ALLOWED = {("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode"),
                ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
                ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer")}

    def find_class(self, module, name):
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"{module}.{name} is not allowed in a data batch")
        return super().find_class(module, name)


def read_cifar_batch(path: Path):
    """(images N x 3 x 32 x 32 uint8, labels N) of one batch file."""
    try:
        with open(path, "rb") as f:
            batch = _ArrayUnpickler(f, encoding="bytes").load()
        data = np.asarray(batch[b"data"], dtype=np.uint8)
        labels = np.asarray(batch[b"labels"], dtype=np.int64)
    except FileNotFoundError:
        raise
    except Exception as e:  # a torn pickle raises any of several errors
        raise HarnessError(f"CIFAR-10 batch {path} is corrupt or truncated ({type(e).__name__}); {FIX}") from None
    if data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or len(labels) != len(data):
        raise HarnessError(f"CIFAR-10 batch {path} has data of shape {data.shape} and {len(labels)} labels, "
                           f"expected N x 3072 and N; {FIX}")
    return data.reshape(-1, 3, 32, 32), labels


def cifar_batch_count(path: Path) -> int:
    """A batch file's images (CIFAR_BATCH), once its size can hold their pixels; nothing unpickled."""
    if path.stat().st_size < CIFAR_BATCH * 3 * 32 * 32:
        raise HarnessError(f"CIFAR-10 batch {path} is truncated (too small for its {CIFAR_BATCH} images); {FIX}")
    return CIFAR_BATCH
