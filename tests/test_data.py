import gzip
import pickle
import struct

import numpy as np
import pytest
import torch
from PIL import Image

from svae.data import DEBIAN_FASHION_MNIST, SPECS, celeba_preprocess, load_images, read_idx
from svae.errors import HarnessError


def write_idx(path, array: np.ndarray, truncate: int = 0):
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    data = header + array.astype(np.uint8).tobytes()
    data = data[:len(data) - truncate]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(data) if path.suffix == ".gz" else data)


def write_mnist(root, n=7, truncate=0):
    raw = root / "MNIST" / "raw"
    rng = np.random.default_rng(0)
    images = rng.integers(1, 256, (n, 28, 28))
    labels = rng.integers(0, 10, n)
    for prefix in ("train", "t10k"):
        write_idx(raw / f"{prefix}-images-idx3-ubyte.gz", images, truncate)
        write_idx(raw / f"{prefix}-labels-idx1-ubyte", labels)  # one plain, one gz: both are read
    return images, labels


def test_mnist_idx_gz_is_read_and_zero_padded_to_32(tmp_path):
    images, labels = write_mnist(tmp_path)
    data = load_images("mnist", "train", root=tmp_path)
    assert data.images.shape == (7, 1, 32, 32) and data.images.dtype == torch.uint8
    assert np.array_equal(data.images[:, 0, 2:30, 2:30].numpy(), images)
    assert data.images[:, :, :2].sum() == 0 and data.images[:, :, :, 30:].sum() == 0
    assert data.labels.tolist() == labels.tolist()


def test_truncated_idx_is_rejected_with_the_fix(tmp_path):
    write_mnist(tmp_path, truncate=100)
    with pytest.raises(HarnessError, match=r"train-images-idx3-ubyte.gz is truncated.*--download"):
        load_images("mnist", "train", root=tmp_path)


def test_torn_gzip_is_rejected(tmp_path):
    path = tmp_path / "x-idx3-ubyte.gz"
    write_idx(path, np.zeros((2, 28, 28)))
    path.write_bytes(path.read_bytes()[:20])
    with pytest.raises(HarnessError, match="cannot read IDX file"):
        read_idx(path)


def test_missing_mnist_names_folder_files_and_download_flag(tmp_path):
    with pytest.raises(HarnessError) as e:
        load_images("mnist", "test", root=tmp_path)
    message = str(e.value)
    assert "t10k-images-idx3-ubyte" in message and str(tmp_path / "MNIST" / "raw") in message
    assert "--download" in message and "\n" not in message


def write_cifar(root, per_batch=4, corrupt=None):
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(1)
    batches = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {b"data": rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8),
                 b"labels": rng.integers(0, 10, per_batch).tolist(), b"batch_label": name.encode()}
        batches[name] = batch
        blob = pickle.dumps(batch, protocol=2)  # the official files are protocol-2 pickles
        (folder / name).write_bytes(blob[: len(blob) // 2] if name == corrupt else blob)
    return batches


def test_cifar10_pickle_batches_are_read(tmp_path):
    batches = write_cifar(tmp_path)
    train = load_images("cifar10", "train", root=tmp_path)
    test = load_images("cifar10", "test", root=tmp_path)
    assert train.images.shape == (20, 3, 32, 32) and test.images.shape == (4, 3, 32, 32)
    # row layout: 1024 red, then green, then blue, row-major
    first = batches["data_batch_1"][b"data"][0]
    assert np.array_equal(train.images[0, 1].numpy().ravel(), first[1024:2048])
    assert test.labels.tolist() == batches["test_batch"][b"labels"]


def test_truncated_cifar_batch_is_rejected(tmp_path):
    write_cifar(tmp_path, corrupt="data_batch_3")
    with pytest.raises(HarnessError, match="data_batch_3 is corrupt or truncated"):
        load_images("cifar10", "train", root=tmp_path)


def test_cifar_batch_cannot_run_code(tmp_path):
    write_cifar(tmp_path)

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    (tmp_path / "cifar-10-batches-py" / "test_batch").write_bytes(pickle.dumps({b"data": Evil()}))
    with pytest.raises(HarnessError, match="corrupt"):
        load_images("cifar10", "test", root=tmp_path)


def write_celeba(root, n=5, partition=True):
    folder = root / "celeba"
    (folder / "img_align_celeba").mkdir(parents=True)
    rng = np.random.default_rng(2)
    lines = []
    for i in range(n):
        name = f"{i + 1:06d}.png"  # lossless, so the test can predict every pixel
        Image.fromarray(rng.integers(0, 256, (218, 178, 3), dtype=np.uint8)).save(folder / "img_align_celeba" / name)
        lines.append(f"{name} {[0, 0, 1, 2, 2][i]}")
    if partition:
        (folder / "list_eval_partition.txt").write_text("\n".join(lines) + "\n")
    return folder


def test_celeba_folder_uses_the_official_partition_and_paper_crop(tmp_path):
    folder = write_celeba(tmp_path)
    train = load_images("celeba", "train", root=tmp_path)
    test = load_images("celeba", "test", root=tmp_path)
    assert train.images.shape == (2, 3, 64, 64) and test.images.shape == (2, 3, 64, 64)
    original = Image.open(folder / "img_align_celeba" / "000004.png")
    # the authors' load_data.py: crop, then Pillow's bilinear resize
    expected = np.asarray(original.crop((25, 45, 153, 173)).resize((64, 64), Image.BILINEAR)).astype(int)
    assert np.abs(test.images[0].permute(1, 2, 0).numpy().astype(int) - expected).max() <= 1
    # decoded once, then cached under the preprocessing's version
    assert (folder / f"preprocessed-{SPECS['celeba'].preprocessing}-test.npy").exists()
    assert torch.equal(load_images("celeba", "test", root=tmp_path).images, test.images)


def test_celeba_without_partition_file_says_where_to_put_it(tmp_path):
    write_celeba(tmp_path, partition=False)
    with pytest.raises(HarnessError, match=r"missing .*list_eval_partition.txt.*copy"):
        load_images("celeba", "train", root=tmp_path)


def test_celeba_resize_is_pillows_bilinear_filter():
    rng = np.random.default_rng(5)
    image = rng.integers(0, 256, (218, 178, 3), dtype=np.uint8)
    ours = celeba_preprocess(image).permute(1, 2, 0).numpy().astype(int)
    pil = np.asarray(Image.fromarray(image[45:173, 25:153]).resize((64, 64), Image.BILINEAR)).astype(int)
    # Pillow filters in fixed point with rounded 8-bit coefficients: off by one at most, rarely
    assert np.abs(ours - pil).max() <= 1 and np.abs(ours - pil).mean() < 0.2
    # the filter has 4 taps at 2x (weights 1, 3, 3, 1 / 8), not the 2x2 mean of torch's default
    box = image[45:173, 25:153].astype(float).reshape(64, 2, 64, 2, 3).mean(axis=(1, 3))
    assert np.abs(ours - box).max() > 10


def test_a_new_preprocessing_version_does_not_reuse_the_old_cache(tmp_path, monkeypatch):
    import dataclasses
    import svae.data
    folder = write_celeba(tmp_path)
    first = load_images("celeba", "test", root=tmp_path)
    stale = folder / f"preprocessed-{SPECS['celeba'].preprocessing}-test.npy"
    np.save(stale, np.zeros_like(first.images.numpy()))  # what an older pipeline might have left
    monkeypatch.setitem(svae.data.SPECS, "celeba", dataclasses.replace(SPECS["celeba"], preprocessing="test-v9"))
    assert torch.equal(load_images("celeba", "test", root=tmp_path).images, first.images)
    assert (folder / "preprocessed-test-v9-test.npy").exists()


def test_celeba_preprocess_rejects_nothing_and_keeps_range():
    out = celeba_preprocess(np.full((218, 178, 3), 255, np.uint8))
    assert out.shape == (3, 64, 64) and out.dtype == torch.uint8 and int(out.min()) == 255


def test_unknown_dataset_and_split_are_clear_errors(tmp_path):
    with pytest.raises(HarnessError, match="unknown dataset 'imagenet'; choose from mnist"):
        load_images("imagenet", "train", root=tmp_path)
    with pytest.raises(HarnessError, match="no split 'valid'"):
        load_images("mnist", "valid", root=tmp_path)


@pytest.mark.skipif(not DEBIAN_FASHION_MNIST.exists(), reason="apt-get install dataset-fashion-mnist")
def test_debian_fashion_mnist_has_60000_train_and_10000_test_images(tmp_path):
    # an empty root: Debian's copy stands in only when the system copy is allowed (no --data-root given)
    train = load_images("fashion-mnist", "train", root=tmp_path, system_copy=True)
    test = load_images("fashion-mnist", "test", root=tmp_path, system_copy=True)
    assert train.images.shape == (60000, 1, 32, 32) and test.images.shape == (10000, 1, 32, 32)
    assert sorted(train.labels.unique().tolist()) == list(range(10))
    assert train.images.float().mean() > 50  # real garments, not an empty array


def test_synthetic_is_deterministic_and_labelled():
    a, b = load_images("synthetic", "train"), load_images("synthetic", "train")
    assert torch.equal(a.images, b.images) and a.images.shape == (1000, 1, 32, 32)
    assert not torch.equal(a.images[:500], load_images("synthetic", "test").images)
    assert sorted(a.labels.unique().tolist()) == [0, 1, 2, 3]
