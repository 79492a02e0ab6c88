"""The registries and the model interface: every registered model satisfies svae/interface.py,
and every name a registry holds resolves, or fails in one line that lists the choices."""
import json

import pytest
import torch

from bench.models import MODELS, build_model
from bench.presets import settings_for
from bench.rundir import registry_facts
from reports.rundir import registry_of
from svae.data import SPECS, load_images
from svae.errors import HarnessError, choose
from svae.interface import Model, Trainable
from svae.samplers import SAMPLERS, GMMConfig, sample_latents, samplers_for


@pytest.mark.parametrize("name", list(MODELS))
def test_every_registered_model_satisfies_the_interface(name, tiny_cfg):
    torch.manual_seed(0)
    model = build_model(name, SPECS["synthetic"], tiny_cfg)
    assert isinstance(model, Model) and isinstance(model, torch.nn.Module)
    x = torch.rand(4, 1, 32, 32)
    for stage in model.stages():
        module = stage.module
        assert isinstance(module, Trainable)
        data = stage.make_data(x)
        if stage.batch_transform is not None:  # as the Trainer applies it to every batch
            data = stage.batch_transform(data)
        out = module(data)
        assert out["x_hat"].shape == data.shape and out["mu"].shape[0] == 4
        terms = module.loss(data, out)
        assert terms["loss"].shape == () and terms["loss"].requires_grad
        assert all(t.shape == () and torch.isfinite(t) for t in terms.values())
        terms["loss"].backward()
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in module.parameters())
    mu, logvar = model.encode(x)
    assert mu.shape == (4, tiny_cfg.latent_dim) and logvar.shape == mu.shape
    z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)  # a sample of q(z|x): finite, also at zero variance
    assert torch.isfinite(z).all()
    decoded = model.decode(z)
    for output in set(MODELS[name].outputs) - {"mix"}:  # mix is put together by svae.samplers.decode
        assert decoded[output].shape == x.shape
    if "second-stage" in samplers_for(name):
        assert model.second_stage_latents(3, torch.Generator().manual_seed(0)).shape == (3, tiny_cfg.latent_dim)


def test_registries_refer_to_registered_names():
    for name, entry in MODELS.items():
        assert entry.compared_at in samplers_for(name), name
        assert entry.outputs[0] == "x_hat"
    for entry in SAMPLERS.values():
        assert entry.models is None or set(entry.models) <= set(MODELS)
    for name, spec in SPECS.items():
        assert spec.name == name and set(spec.splits) >= {"train", "test"}


def test_paper_preset_reads_the_dataset_spec():
    # The authors' published settings, written out here by hand.
    for dataset, latent_dim, beta, epochs in (("mnist", 32, 8.0, 100), ("cifar10", 200, 3.0, 700),
                                              ("celeba", 150, 3.0, 70)):
        settings = settings_for("paper", dataset)
        assert (settings.model.latent_dim, settings.model.beta, settings.epochs) == (latent_dim, beta, epochs)


def test_manifest_records_every_registry_in_order_and_reports_read_it(tmp_path):
    # Through JSON with sorted keys, as atomic_write_json writes the manifest: the order must survive.
    manifest = json.loads(json.dumps({"registry": registry_facts()}, sort_keys=True))
    models, samplers = registry_of(manifest, "models"), registry_of(manifest, "samplers")
    assert list(models) == list(MODELS) and list(samplers) == list(SAMPLERS)
    assert list(registry_of(manifest, "datasets")) == list(SPECS)
    assert models["two-stage"]["compared_at"] == "second-stage"
    assert models["svae"]["outputs"] == ["x_hat", "x1", "x2", "mix"]
    assert samplers["second-stage"]["models"] == ["two-stage"]
    assert samplers["gmm"]["models"] is None and samplers["prior"]["description"]


@pytest.mark.parametrize("call, message", [
    (lambda: choose("widget", "x", {"a": 1, "b": 2}), "unknown widget 'x'; choose from a, b"),
    (lambda: load_images("imagenet", "train"), "unknown dataset 'imagenet'; choose from mnist, fashion-mnist"),
    (lambda: settings_for("huge", "mnist"), "unknown preset 'huge'; choose from paper, smoke"),
    (lambda: sample_latents(None, "langevin", 2, train_images=None, test_images=None, gmm=GMMConfig(), seed=0),
     "unknown sampler 'langevin'; choose from gmm, prior"),
])
def test_unknown_names_are_one_line_errors_that_list_the_choices(call, message):
    with pytest.raises(HarnessError) as error:
        call()
    assert str(error.value).startswith(message) and "\n" not in str(error.value)
