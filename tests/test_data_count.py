"""count_images, the dry run's check: the split sizes load_images would return, from the files' headers
and sizes alone, and load_images's errors where a file is missing or truncated."""
import dataclasses
import shutil

import numpy as np
import pytest

import bench.run
import svae.data
from svae.data import DEBIAN_FASHION_MNIST, count_images, load_images
from svae.errors import HarnessError
from tests.test_data import write_celeba, write_idx, write_mnist


@pytest.fixture
def no_decoding(monkeypatch):
    """Every dataset's loader refuses: counting must not read the images."""
    def refuse(*args):
        raise AssertionError("count_images decoded a split")
    for name, spec in list(svae.data.SPECS.items()):
        monkeypatch.setitem(svae.data.SPECS, name, dataclasses.replace(spec, load=refuse))


def test_mnist_counts_from_gz_and_plain_headers_as_loading_does(tmp_path):
    write_mnist(tmp_path, n=7)  # images .gz, labels plain
    assert count_images("mnist", "train", tmp_path) == len(load_images("mnist", "train", tmp_path).images) == 7


def test_counting_reads_no_images(tmp_path, no_decoding):
    write_mnist(tmp_path, n=7)
    assert count_images("mnist", "test", tmp_path) == 7 and count_images("synthetic", "train") == 1000


@pytest.mark.parametrize("image_file", ["train-images-idx3-ubyte.gz", "train-images-idx3-ubyte"])
def test_a_truncated_idx_is_refused_without_decoding_it(tmp_path, no_decoding, image_file):
    raw = tmp_path / "MNIST" / "raw"
    write_mnist(tmp_path, n=7)
    (raw / "train-images-idx3-ubyte.gz").unlink()
    write_idx(raw / image_file, np.zeros((7, 28, 28)), truncate=100)  # a download cut short
    with pytest.raises(HarnessError, match=rf"{image_file} is truncated or padded: 5388 bytes of data, 5488 "
                                           r"expected.*--download"):
        count_images("mnist", "train", tmp_path)


def test_a_missing_split_names_the_file_and_the_fix_as_loading_does(tmp_path, no_decoding):
    with pytest.raises(HarnessError) as counted:
        count_images("mnist", "test", tmp_path)
    assert "t10k-images-idx3-ubyte" in str(counted.value) and "python -m bench.data get mnist" in str(counted.value)
    for dataset in ("cifar10", "celeba"):
        with pytest.raises(HarnessError, match="missing"):
            count_images(dataset, "train", tmp_path)


def test_cifar_counts_ten_thousand_a_batch_and_refuses_a_short_one(tmp_path, no_decoding):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    with open(folder / "test_batch", "wb") as f:
        f.truncate(10000 * 3072 + 1000)  # sparse: the size of a batch without writing one
    assert count_images("cifar10", "test", tmp_path) == 10000
    (folder / "test_batch").write_bytes(b"\x80\x02" * 100)
    with pytest.raises(HarnessError, match="test_batch is truncated"):
        count_images("cifar10", "test", tmp_path)


def test_celeba_counts_its_split_file_once_the_images_are_there(tmp_path, no_decoding):
    folder = write_celeba(tmp_path)  # partition: two train, one valid, two test
    assert [count_images("celeba", s, tmp_path) for s in ("train", "valid", "test")] == [2, 1, 2]
    shutil.rmtree(folder / "img_align_celeba")
    with pytest.raises(HarnessError, match="img_align_celeba"):
        count_images("celeba", "train", tmp_path)


@pytest.mark.skipif(not DEBIAN_FASHION_MNIST.exists(), reason="apt-get install dataset-fashion-mnist")
def test_debian_fashion_mnist_counts_60000_and_10000(tmp_path, no_decoding):
    assert count_images("fashion-mnist", "train", tmp_path, system_copy=True) == 60000
    assert count_images("fashion-mnist", "test", tmp_path, system_copy=True) == 10000
    with pytest.raises(HarnessError, match="drop --data-root to use Debian's copy"):
        count_images("fashion-mnist", "test", tmp_path)  # a root given: Debian's copy does not stand in


@pytest.mark.skipif(not DEBIAN_FASHION_MNIST.exists(), reason="apt-get install dataset-fashion-mnist")
def test_the_dry_run_finds_data_that_is_there_without_decoding_it(tmp_path, no_decoding, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # ./data is empty: Debian's Fashion-MNIST stands in, as in the real run
    args = ["--preset", "smoke", "--datasets", "fashion-mnist", "--out", str(tmp_path / "run"), "--dry-run"]
    assert bench.run.main([*args, "--fid-samples", "10000"]) == 0
    assert "missing" not in capsys.readouterr().out
    assert bench.run.main([*args, "--fid-samples", "10001"]) == 2  # more than the test split holds
    assert "missing: fashion-mnist test: 10000 images, fewer than the 10001 samples" in capsys.readouterr().out
    write_mnist(tmp_path / "data", n=7)
    assert bench.run.main([*args[:3], "mnist", *args[4:], "--fid-samples", "8"]) == 2
    assert "missing: mnist test: 7 images, fewer than the 8" in capsys.readouterr().out


def test_with_download_the_dry_run_leaves_the_data_to_the_real_run(tmp_path, capsys):
    code = bench.run.main(["--preset", "smoke", "--datasets", "mnist", "--data-root", str(tmp_path / "empty"),
                           "--out", str(tmp_path / "run"), "--dry-run", "--download"])
    out = capsys.readouterr().out
    assert code == 0 and "data: not checked (--download" in out and "missing:" not in out
    assert not (tmp_path / "empty").exists()  # nothing downloaded
