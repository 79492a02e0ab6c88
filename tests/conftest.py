import pytest

from svae.backbone import BackboneConfig
from svae.config import ModelConfig


@pytest.fixture
def tiny_cfg():
    """A narrow network: the paper's structure at a width that trains in seconds on a CPU."""
    return ModelConfig(latent_dim=8, beta=1.0,
                       backbone=BackboneConfig(base_width=8, embedding_dim=32, bn_momentum=0.1),
                       stage2_width=32, stage2_depth=2)
