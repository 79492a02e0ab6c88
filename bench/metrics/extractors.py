"""Feature extractors: pytorch-fid's Inception and the fd_domain classifier behind one interface.

An extractor has a `name` (which network: "inception-fid", "domain-<dataset>-<version>"), a `family` that
names its metrics ("inception": fid, kid; "domain": fd_domain, kd_domain), a `weights_hash`, an `id`
(name, preprocessing version and weights hash: figures with equal ids are comparable) and
`features(images) -> N x D float64`. The features are the network's float32 outputs, so storing them
as float32 loses nothing.
"""
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from bench.metrics.inception_weights import FID_WEIGHTS_FILE, find_weights
from bench.metrics.onnx_engine import on_onnxruntime
from svae.errors import HarnessError

# How images become network input: v1 = floats rounded to 1/255 steps (q255) or not (float), then the
# network's own resize. Bump the version when that path changes: cached real features key on it.
PREPROCESSING_VERSION = "v1"


def fid_inception_v3() -> nn.Module:
    """pytorch_fid.inception.fid_inception_v3 without its download: torchvision's network with the
    blocks that the TF FID graph computes differently."""
    import pytorch_fid.inception as pfi  # here: it imports torchvision, two seconds of every command's start-up

    net = pfi._inception_v3(num_classes=1008, aux_logits=False, weights=None)
    net.Mixed_5b = pfi.FIDInceptionA(192, pool_features=32)
    net.Mixed_5c = pfi.FIDInceptionA(256, pool_features=64)
    net.Mixed_5d = pfi.FIDInceptionA(288, pool_features=64)
    net.Mixed_6b = pfi.FIDInceptionC(768, channels_7x7=128)
    net.Mixed_6c = pfi.FIDInceptionC(768, channels_7x7=160)
    net.Mixed_6d = pfi.FIDInceptionC(768, channels_7x7=160)
    net.Mixed_6e = pfi.FIDInceptionC(768, channels_7x7=192)
    net.Mixed_7b = pfi.FIDInceptionE_1(1280)
    net.Mixed_7c = pfi.FIDInceptionE_2(2048)
    return net


class FIDInception(nn.Module):
    """pytorch-fid's InceptionV3 up to the 2048-d pool3 features: the same layers and input scaling.

    It runs in channels_last, which oneDNN convolves about twice as fast on CPUs, with each batch norm
    folded into its convolution (fold_batch_norm), which saves batch norm's pass over every activation:
    1.04x the images/s of pytorch-fid's layers (median of 3 interleaved rounds, 2-core CPU under load;
    python -m bench.cost.perf fid-tuning, docs/performance.md). Both change round-off only: on real
    images and weights the features moved by 2.3e-6 of the largest, FID by 1e-7 relative. On CPUs
    inception_extractor runs these layers in ONNX Runtime (bench/metrics/onnx_engine.py).
    """

    def __init__(self, state_dict, fold_batch_norm: bool = True):
        super().__init__()
        net = fid_inception_v3()
        try:  # the classifier (fc) may be absent, as in weights converted from pool3-only copies
            missing, unexpected = net.load_state_dict(state_dict, strict=False)
        except RuntimeError as e:
            raise HarnessError(f"the FID weights do not fit pytorch-fid's Inception ({str(e).splitlines()[0]}); "
                               f"pass the file {FID_WEIGHTS_FILE}") from None
        if unexpected or set(missing) - {"fc.weight", "fc.bias"}:
            raise HarnessError(f"the FID weights do not fit pytorch-fid's Inception ({len(missing)} entries "
                               f"missing, {len(unexpected)} unexpected, e.g. {(missing + unexpected)[0]}); "
                               f"pass the file {FID_WEIGHTS_FILE}")
        if fold_batch_norm:
            fold_batch_norms(net)
        self.layers = nn.Sequential(
            net.Conv2d_1a_3x3, net.Conv2d_2a_3x3, net.Conv2d_2b_3x3, nn.MaxPool2d(kernel_size=3, stride=2),
            net.Conv2d_3b_1x1, net.Conv2d_4a_3x3, nn.MaxPool2d(kernel_size=3, stride=2),
            net.Mixed_5b, net.Mixed_5c, net.Mixed_5d, net.Mixed_6a, net.Mixed_6b, net.Mixed_6c, net.Mixed_6d,
            net.Mixed_6e, net.Mixed_7a, net.Mixed_7b, net.Mixed_7c, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.eval().to(memory_format=torch.channels_last)

    @staticmethod
    def network_input(x):
        """x: floats in [0, 1], N x C x H x W with C 1 (repeated, as PIL's convert('RGB')) or 3; the
        layers' N x 3 x 299 x 299 input in [-1, 1]."""
        # resized and scaled before grey is repeated: the same values as pytorch-fid's order, on a third of them
        x = 2 * F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False) - 1
        return x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x

    def forward(self, x):
        return self.layers(self.network_input(x).contiguous(memory_format=torch.channels_last))


def fold_batch_norms(net: nn.Module) -> None:
    """Each convolution + batch norm (torchvision's BasicConv2d, all 94 of the FID Inception's) made one
    convolution with a bias, in place: eval-mode batch norm is an affine map per channel, so
    w' = w * gamma / sqrt(var + eps), b' = beta - mean * gamma / sqrt(var + eps). Computed in float64 and
    rounded once to float32, so the features differ from the unfolded network's by round-off only; it
    saves batch norm's pass over every activation."""
    from torchvision.models.inception import BasicConv2d  # here, as in fid_inception_v3

    for block in net.modules():
        if isinstance(block, BasicConv2d):
            conv, bn = block.conv, block.bn
            scale = bn.weight.double() / torch.sqrt(bn.running_var.double() + bn.eps)
            folded = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding,
                               conv.dilation, conv.groups, bias=True)
            with torch.no_grad():
                folded.weight.copy_(conv.weight.double() * scale[:, None, None, None])
                folded.bias.copy_(bn.bias.double() - bn.running_mean.double() * scale)
            block.conv, block.bn = folded, nn.Identity()


def as_unit_float(images, quantize: bool = True) -> torch.Tensor:
    """Images as float32 in [0, 1]: uint8 divided by 255; floats checked and, by default, rounded to
    1/255 steps as saving to PNG would, so that in-memory figures match figures from image files."""
    images = torch.as_tensor(images)
    if images.dtype == torch.uint8:
        return images.float() / 255
    images = images.float()
    if not (images.isfinite().all() and images.min() >= 0 and images.max() <= 1):
        raise HarnessError(f"images must be floats in [0, 1] (got min {images.min().item():.4g}, max "
                           f"{images.max().item():.4g}); map them to [0, 1] before scoring")
    return (images * 255).round() / 255 if quantize else images


def features(forward, images, batch_size=100, device="cpu", quantize=True) -> np.ndarray:
    """forward's features of N x C x H x W images (uint8, or floats in [0, 1]) as an N x D float64 array."""
    images = torch.as_tensor(images)
    if images.ndim != 4 or images.shape[1] not in (1, 3) or len(images) == 0:
        raise HarnessError(f"images must be N x C x H x W with C 1 or 3 (got shape {tuple(images.shape)})")
    out = []
    # TF32 would change features by ~1e-3 on GPUs: keep true float32, as the metric is defined
    with torch.inference_mode(), torch.backends.cudnn.flags(enabled=True, allow_tf32=False):
        for batch in images.split(batch_size):
            out.append(forward(as_unit_float(batch.to(device), quantize)).double().cpu())
    return torch.cat(out).numpy()


class Extractor:
    """A network's features with the names that go into results.csv (see the module docstring)."""

    def __init__(self, name: str, family: str, forward, weights_hash: str, device, batch_size=100,
                 quantize=True, weights_source=""):
        self.name, self.family, self.weights_hash = name, family, weights_hash
        self.weights_source = weights_source or f"weights sha256 {weights_hash}"  # in words, for reports
        self.forward, self.device, self.batch_size, self.quantize = forward, device, batch_size, quantize
        self.preprocessing = f"{PREPROCESSING_VERSION}-{'q255' if quantize else 'float'}"
        self.id = f"{name}:{self.preprocessing}:{weights_hash}"

    def features(self, images) -> np.ndarray:
        """N x D float64 features of N x C x H x W images (uint8, or floats in [0, 1])."""
        return features(self.forward, images, self.batch_size, self.device, self.quantize)


def inception_extractor(weights_path=None, device="cpu", batch_size=100, quantize=True, threads=None) -> Extractor:
    """FID's extractor: its layers run by ONNX Runtime on CPUs (bench/metrics/onnx_engine.py; threads: its
    threads, None: torch's when the first batch comes), by torch on GPUs. Both give the same features to
    round-off, as folding the batch norms does, so the extractor id is one."""
    weights = find_weights(weights_path)
    try:
        state_dict = torch.load(weights.path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise HarnessError(f"cannot read FID weights {weights.path} ({type(e).__name__}); delete it and download "
                           f"{FID_WEIGHTS_FILE} again or, if converted, let it be converted again") from None
    net = FIDInception(state_dict).to(device)
    source = weights.source
    if torch.device(device).type == "cpu":
        net, source = on_onnxruntime(net, weights.tag, threads=threads), f"{source}; run by ONNX Runtime"
    return Extractor("inception-fid", "inception", net, weights.tag, device, batch_size, quantize, source)


def domain_extractor(dataset: str, net, device="cpu", batch_size=100, quantize=True) -> Extractor:
    """The fd_domain classifier of a dataset (bench/domain.py) as an extractor: its 128-d penultimate
    features. The name carries bench.domain.DOMAIN_VERSION (v1 used the logits), so figures of two
    versions never share an extractor id."""
    from bench.domain import DOMAIN_VERSION, state_hash
    net = net.to(device).eval()
    return Extractor(f"domain-{dataset}-{DOMAIN_VERSION}", "domain", net.features, state_hash(net), device,
                     batch_size, quantize)
