"""FID's Inception on CPUs through ONNX Runtime: the same convolutions, exported from torch once per
weights and torch version and kept beside the weights, run by ONNX Runtime's CPU kernels, which fuse
each convolution with its bias and ReLU and lay the channels out in blocks for the CPU's vector width.

On the 2-core AVX2 machine that is 1.30x torch's images/s on the same layers (channels_last, batch norm
folded), the cost that decides how long a CPU study's FID takes; the features differ by round-off
(1.5e-5 of the largest). `python -m bench.cost.perf fid-tuning` measures both; docs/performance.md.
The resize and scaling stay in torch (FIDInception.network_input): only the layers are exported.
"""
import io
from pathlib import Path

import torch

from bench.metrics.inception_weights import hub_checkpoints
from svae.io import atomic_write_bytes, cached

INPUT, OUTPUT = "images", "features"  # N x 3 x 299 x 299 in [-1, 1]; N x 2048


def exported_layers(layers: torch.nn.Module, path: Path) -> bytes:
    """The ONNX graph of layers, exported once into path (concurrent processes wait for the first)."""
    def export() -> bytes:
        buffer = io.BytesIO()
        torch.onnx.export(layers, torch.zeros(1, 3, 299, 299),
                          buffer, input_names=[INPUT], output_names=[OUTPUT], dynamic_axes={INPUT: {0: "n"}},
                          dynamo=False)
        return buffer.getvalue()

    def load(file: Path) -> bytes:
        graph = file.read_bytes()
        _session(graph, threads=1)  # a foreign or damaged file raises here, and cached exports again
        return graph

    return cached(path, export, lambda graph, file: atomic_write_bytes(file, graph), load)


def _session(graph: bytes, threads: int):
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    return onnxruntime.InferenceSession(graph, options, providers=["CPUExecutionProvider"])


class OnnxRuntimeForward:
    """net's forward (FIDInception) with its layers run by ONNX Runtime on `threads` threads; None: as
    many as torch uses when the first batch comes (a trial sets torch's threads before it scores)."""

    def __init__(self, net, graph: bytes, threads: int | None = None):
        self.net, self.graph, self.threads, self.session = net, graph, threads, None

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        if self.session is None:
            self.session = _session(self.graph, self.threads or torch.get_num_threads())
        x = self.net.network_input(images).contiguous()
        return torch.from_numpy(self.session.run([OUTPUT], {INPUT: x.numpy()})[0])


def graph_file(weights_tag: str, folder: Path | None = None) -> Path:
    """Where the graph of the weights is kept: folder (default: the torch hub's checkpoints, beside the
    weights), named by the weights and the torch version that exports it."""
    return (folder or hub_checkpoints()) / f"fid-inception-{weights_tag}-torch{torch.__version__}.onnx"


def on_onnxruntime(net, weights_tag: str, folder: Path | None = None, threads: int | None = None) -> OnnxRuntimeForward:
    """net (an FIDInception) run by ONNX Runtime, its graph kept at graph_file(weights_tag, folder)."""
    return OnnxRuntimeForward(net, exported_layers(net.layers, graph_file(weights_tag, folder)), threads)
