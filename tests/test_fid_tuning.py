"""The FID Inception's CPU settings (bench/cost/fid_tuning.py): the adopted defaults, batch norm folded into
each convolution and, on CPUs, the layers run by ONNX Runtime, give pytorch-fid's layers' features; the
tuning mode runs on a tiny input. No timing is asserted."""
import importlib.util
import warnings

import numpy as np
import pytest
import torch
from torch import nn

from bench.cost.fid_tuning import FID_TOLERANCE, tuning_benchmark
from bench.cost.perf import random_images
from bench.metrics.extractors import FIDInception, features
from bench.metrics.onnx_engine import check_installed, exported_layers, graph_file, on_onnxruntime
from svae.errors import HarnessError
from tests.fid_helpers import inception_weights  # noqa: F401


@pytest.fixture(scope="module")
def state_dict(inception_weights):  # noqa: F811
    return torch.load(inception_weights, weights_only=True)


def test_folded_batch_norm_gives_the_layers_features(state_dict):
    apart, folded = FIDInception(state_dict, fold_batch_norm=False), FIDInception(state_dict)
    assert sum(isinstance(m, nn.BatchNorm2d) for m in apart.modules()) == 94
    assert not any(isinstance(m, nn.BatchNorm2d) for m in folded.modules())
    images = torch.cat([random_images(3, 1, 28, seed=5).expand(-1, 3, -1, -1), random_images(3, 3, 28, seed=6)])
    reference, ours = features(apart, images), features(folded, images)
    assert np.abs(reference).max(axis=1).min() > 0.1  # features of a realistic scale, not zeros
    # round-off only, relative to the largest feature, within the engine's bound against pytorch-fid
    # (bench.cost.perf fid): the seeded random convolutions amplify it (5e-5 measured) well beyond the
    # trained weights (2e-6; those are checked against the TorchScript in tests/test_inception_weights.py)
    assert np.abs(ours - reference).max() / np.abs(reference).max() < 1e-4


def test_onnx_runtime_gives_the_layers_features_and_a_foreign_graph_is_exported_again(state_dict, tmp_path):
    apart = FIDInception(state_dict, fold_batch_norm=False)
    images = torch.cat([random_images(3, 1, 28, seed=5), random_images(3, 1, 28, seed=9)])
    net = FIDInception(state_dict)
    graph = graph_file(net.layers, "seeded", tmp_path)
    other = FIDInception({k: v * 1.01 if k.endswith("conv.weight") else v for k, v in state_dict.items()})
    graph.write_bytes(exported_layers(other.layers, None))  # a valid graph of other weights under this name
    with pytest.warns(UserWarning, match="not these layers'"):
        ours = features(on_onnxruntime(net, "seeded", tmp_path, threads=2), images)
    reference = features(apart, images.expand(-1, 3, -1, -1))
    assert ours.shape == (6, 2048) and np.abs(reference).max(axis=1).min() > 0.1
    assert np.abs(ours - reference).max() / np.abs(reference).max() < 1e-4  # the bound of the test above
    with warnings.catch_warnings():  # the graph exported again replaced the foreign one, and is read as it is
        warnings.simplefilter("error")
        forward = on_onnxruntime(FIDInception(state_dict), "seeded", tmp_path, threads=1)
        again = features(forward, images)
    assert forward.session.get_session_options().intra_op_num_threads == 1  # bench.rescore --fid-threads
    np.testing.assert_array_equal(again, ours)  # 1 thread or 2: ONNX Runtime's features are the same


def test_without_onnx_runtime_cpu_fid_is_one_line_naming_the_install(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "onnxruntime" else real(name, *a))
    with pytest.raises(HarnessError, match=r"onnxruntime is not installed here; run: pip install onnxruntime onnx$"):
        check_installed()


@pytest.mark.slow  # an export (~10 s)
def test_a_folder_that_cannot_keep_the_graph_exports_it_in_memory(state_dict, tmp_path):
    blocked = tmp_path / "a-file"
    blocked.write_text("")  # the checkpoints folder's name is taken by a file: no folder can be made there
    with pytest.warns(UserWarning, match="cannot keep FID's ONNX graph"):
        forward = on_onnxruntime(FIDInception(state_dict), "seeded", blocked)
    images = random_images(2, 3, 28, seed=5)
    reference = features(FIDInception(state_dict), images)
    assert np.abs(features(forward, images) - reference).max() / np.abs(reference).max() < 1e-4
    assert blocked.is_file()


@pytest.mark.slow  # every variant featurises and scores FID: 20 s beside a 2-trial sweep, 301 s at load ~10
def test_tuning_mode_times_every_variant_and_checks_its_fid(state_dict, capsys, tmp_path):
    first, second = random_images(2, 1, 28, seed=7), random_images(2, 1, 28, seed=8, shift=0.1)
    rows = tuning_benchmark(state_dict, first, second, batch_size=2, weights_tag="seeded", repeats=1,
                            graph_folder=tmp_path)
    ratios = [r for r in rows if "median ratio" in r["measure"]]
    fid_diffs = [r for r in rows if r["measure"].endswith("FID relative difference")]
    assert len(ratios) == len(fid_diffs) >= 2 and all(r["value"] > 0 for r in ratios)
    assert all(r["value"] <= FID_TOLERANCE and r["target"] == ["<=", FID_TOLERANCE] for r in fid_diffs)
    printed = capsys.readouterr().out
    assert "ONNX Runtime (the CPU default)" in printed and "torch (the GPU default)" in printed
