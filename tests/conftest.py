import pytest

from svae.backbone import BackboneConfig
from svae.config import ModelConfig


@pytest.fixture
def tiny_cfg():
    """A narrow network: the paper's structure at a width that trains in seconds on a CPU."""
    return ModelConfig(latent_dim=8, beta=1.0,
                       backbone=BackboneConfig(base_width=8, embedding_dim=32, bn_momentum=0.1),
                       stage2_width=32, stage2_depth=2)


@pytest.fixture(scope="session")
def reference_sweep(tmp_path_factory):
    """The run directory of tests/test_run_relocation.py's sweep, never interrupted: what every killed
    and resumed run of that sweep must equal. One per session: the relocation and S3 tests share it."""
    from tests.test_run_relocation import sweep
    run_dir = tmp_path_factory.mktemp("reference") / "run"
    out = sweep(run_dir)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    return run_dir
