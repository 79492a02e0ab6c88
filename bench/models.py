"""The model registry: a name to a builder taking (dataset spec, ModelConfig).

Adding a model is one file with a builder, and one line here.
"""
from baselines.beta_vae import build_beta_vae
from baselines.two_stage import TwoStageVAE
from baselines.vae import build_vae
from svae.errors import HarnessError
from svae.split import build_svae

MODELS = {"svae": build_svae, "vae": build_vae, "beta-vae": build_beta_vae, "two-stage": TwoStageVAE}


def build_model(name: str, spec, cfg):
    if name not in MODELS:
        raise HarnessError(f"unknown model {name!r}; choose from {', '.join(MODELS)}")
    return MODELS[name](spec, cfg)
