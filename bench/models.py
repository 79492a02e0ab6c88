"""The model registry: a name to an entry that carries the model's builder and its facts.

Adding a model is one file (svae/ or baselines/) with a builder, and one line here. A builder takes
(dataset spec, svae.config.ModelConfig) and returns a model satisfying svae/interface.py's Model.
The facts travel into every run's manifest, so reports read labels and samplers from there.
"""
from dataclasses import dataclass
from collections.abc import Callable

from baselines.beta_vae import build_beta_vae
from baselines.rae import build_rae
from baselines.two_stage import TwoStageVAE
from baselines.vae import build_vae
from svae.errors import choose
from svae.split import build_svae

SPLIT_OUTPUTS = ("x_hat", "x1", "x2", "mix")


@dataclass(frozen=True)
class ModelEntry:
    build: Callable  # (DatasetSpec, ModelConfig) -> svae.interface.Model
    label: str  # the display name in tables and figures
    compared_at: str = "gmm"  # the sampler its own paper samples with: where it is compared
    outputs: tuple = ("x_hat",)  # the decoded outputs that are scored (svae.samplers.decode's names)
    literature: tuple = ()  # other names of its rows in reports/literature_fid.csv
    search: tuple | None = None  # (ModelConfig field, grid): a free knob tuned first (bench/search.py)
    learns_gamma: bool = False  # its image model learns gamma by gradient: every trial checks it (bench/gamma.py)


MODELS = {
    "svae": ModelEntry(build_svae, "SVAE", outputs=SPLIT_OUTPUTS),
    "vae": ModelEntry(build_vae, "VAE"),
    # beta on a log grid of powers of 2 from 1/32 to 8 (Higgins et al.'s 4 inside it; the smoke search
    # chose the old lower edge, 1/8), gamma fixed at the preset's value
    "beta-vae": ModelEntry(build_beta_vae, "beta-VAE",
                           search=("beta_vae_beta", tuple(2.0 ** k for k in range(-5, 4)))),
    "two-stage": ModelEntry(TwoStageVAE, "two-stage VAE", compared_at="second-stage", learns_gamma=True),
    "rae": ModelEntry(build_rae, "RAE-L2", literature=("rae-l2",)),
}


def build_model(name: str, spec, cfg):
    return choose("model", name, MODELS).build(spec, cfg)
