"""FID's Inception on CPUs through ONNX Runtime: the same convolutions, exported from torch once per
weights and layers and kept beside the weights, run by ONNX Runtime's CPU kernels, which fuse each
convolution with its bias and ReLU and lay the channels out in blocks for the CPU's vector width.

On the quiet 2-core AVX2 machine that is 1.26x torch's images/s on the same layers (channels_last, batch
norm folded; 1.46x pytorch-fid's layers), the cost that decides how long a CPU study's FID takes; FID
moved by 7e-9 relative on real images (`python -m bench.cost.perf fid-tuning`, docs/performance.md).
The resize and scaling stay in torch (FIDInception.network_input): only the layers are exported.
"""
import hashlib
import importlib.util
import io
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from bench.metrics.inception_weights import hub_checkpoints
from svae.errors import HarnessError
from svae.io import atomic_write_bytes, cached

INPUT, OUTPUT = "images", "features"  # N x 3 x 299 x 299 in [-1, 1]; N x 2048
GRAPH_VERSION = "v1"  # bump when the export's arguments change: cached graphs key on it
GRAPH_TOLERANCE = 1e-4  # a cached graph is used only if its features are the layers' to this (of the largest)


def check_installed() -> None:
    """ONNX Runtime runs the graph and torch's exporter needs onnx: both are dependencies (pyproject.toml)."""
    missing = [name for name in ("onnxruntime", "onnx") if importlib.util.find_spec(name) is None]
    if missing:
        verb = "is" if len(missing) == 1 else "are"
        raise HarnessError(f"FID's Inception runs in ONNX Runtime on CPUs, and {' and '.join(missing)} {verb} not "
                           "installed here; run: pip install onnxruntime onnx")


def graph_file(layers: torch.nn.Module, weights_tag: str, folder: Path | None = None) -> Path:
    """Where the graph of these layers with these weights is kept: folder (default: the torch hub's
    checkpoints, beside the weights), named by the weights and a hash of the layers, the torch version
    that exports them and GRAPH_VERSION."""
    key = hashlib.sha256(f"{GRAPH_VERSION} {torch.__version__} {layers!r}".encode()).hexdigest()[:12]
    return (folder or hub_checkpoints()) / f"fid-inception-{weights_tag}-{key}.onnx"


def exported_layers(layers: torch.nn.Module, path: Path | None) -> bytes:
    """The ONNX graph of layers, exported once into path (concurrent processes wait for the first); a
    file whose features are not the layers' (damaged, or foreign) is exported again. path None, or a
    folder that cannot take the file: exported in memory, for this process only."""
    def export() -> bytes:
        buffer = io.BytesIO()
        torch.onnx.export(layers, torch.zeros(1, 3, 299, 299), buffer, input_names=[INPUT], output_names=[OUTPUT],
                          dynamic_axes={INPUT: {0: "n"}}, dynamo=False)
        return buffer.getvalue()

    def load(file: Path) -> bytes:
        graph = file.read_bytes()
        _check_graph(graph, layers)
        return graph

    if path is None:
        return export()
    try:
        return cached(path, export, lambda graph, file: atomic_write_bytes(file, graph), load)
    except OSError as e:  # a read-only or full checkpoints folder: the graph is exported again in each process
        warnings.warn(f"cannot keep FID's ONNX graph in {path.parent} ({e.strerror}); it is exported in each "
                      "process (about 10 s)", stacklevel=2)
        return export()


def _check_graph(graph: bytes, layers: torch.nn.Module) -> None:
    """Raises ValueError unless the graph's features of a fixed input are the layers' (GRAPH_TOLERANCE)."""
    probe = torch.linspace(-1, 1, 3 * 299 * 299).reshape(1, 3, 299, 299)
    with torch.inference_mode():
        expected = layers(probe.contiguous(memory_format=torch.channels_last)).numpy()
    got = _session(graph, threads=1).run([OUTPUT], {INPUT: probe.numpy()})[0]
    if got.shape != expected.shape or np.abs(got - expected).max() > GRAPH_TOLERANCE * np.abs(expected).max():
        raise ValueError("its features are not these layers' (a graph of other weights or layers)")


def _session(graph: bytes, threads: int):
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    return onnxruntime.InferenceSession(graph, options, providers=["CPUExecutionProvider"])


class OnnxRuntimeForward:
    """FID Inception's forward: `prepare` (FIDInception.network_input, in torch) and the layers' graph run
    by ONNX Runtime on `threads` threads; None: as many as torch uses when the first batch comes (a trial
    sets torch's threads before it scores)."""

    def __init__(self, prepare: Callable, graph: bytes, threads: int | None = None):
        self.prepare, self.graph, self.threads, self.session = prepare, graph, threads, None

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        if self.session is None:
            self.session = _session(self.graph, self.threads or torch.get_num_threads())
            self.graph = None  # the session holds it: 87 MB less
        x = self.prepare(images).contiguous()
        return torch.from_numpy(self.session.run([OUTPUT], {INPUT: x.numpy()})[0])


def on_onnxruntime(net, weights_tag: str | None, folder: Path | None = None,
                   threads: int | None = None) -> OnnxRuntimeForward:
    """net (an FIDInception) run by ONNX Runtime, its graph kept at graph_file(...); weights_tag None: a
    network that is not worth keeping (random weights), exported in memory."""
    check_installed()
    path = graph_file(net.layers, weights_tag, folder) if weights_tag is not None else None
    return OnnxRuntimeForward(net.network_input, exported_layers(net.layers, path), threads)
