"""Latent samplers and decoding to named outputs; the sampler registry SAMPLERS is at the end.

A sampler draws latents from a model (svae/interface.py); `decode` turns them into a dict of float
images in [0, 1] on the CPU: x_hat, and for the SVAE also x1, x2, sigma and mix (x1 for the first
half of the samples, x2 for the second).

"recon" decodes z = mu(x) + exp(logvar(x) / 2) * eps, a posterior sample, as both reference codes
do; "recon-mean" decodes mu(x) itself. It is labelled as such and not scored by default.

Which of the SVAE's two components is "x1" is an accident of initialisation; `orient_components`
names them by a rule fixed in advance (COMPONENT_RULE), once per trial, on a draw that no scored
sample comes from.
"""
from dataclasses import dataclass
from collections.abc import Callable

import torch

from svae.data import as_float
from svae.errors import choose


@dataclass(frozen=True)
class GMMConfig:
    components: int = 100  # "heldout": the largest count tried; "fixed": the count
    covariance: str = "full"
    max_iter: int = 200
    fit_on: str = "train"  # "train" is leak-free; "test" fits on the FID reference images as the authors did
    fit_n: int = 10000
    # "heldout": the count of COMPONENT_LADDER up to `components` whose mixture, fitted on the other
    # latents, gives the held-out share of the fitting latents the highest mean log-likelihood; then
    # refitted on all of them. "fixed": `components` as given.
    select: str = "heldout"
    heldout_share: float = 0.2


COMPONENT_LADDER = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000)
GMM_SELECTIONS = ("heldout", "fixed")


def model_device(model) -> torch.device:
    return next(model.parameters()).device


@torch.no_grad()
def latent_posteriors(model, images, batch_size: int = 500) -> tuple:
    """(mu(x), logvar(x)) for every image, in evaluation mode, on the CPU."""
    was_training = model.training
    model.eval()
    device = model_device(model)
    parts = [model.encode(as_float(images[i:i + batch_size]).to(device)) for i in range(0, len(images), batch_size)]
    model.train(was_training)
    return tuple(torch.cat([p[k].float().cpu() for p in parts]) for k in (0, 1))


def latent_means(model, images, batch_size: int = 500) -> torch.Tensor:
    """mu(x) for every image, in evaluation mode, on the CPU."""
    return latent_posteriors(model, images, batch_size)[0]


def interpolation_latents(model, ends, steps: int) -> torch.Tensor:
    """steps latents evenly spaced on the straight line between the posterior means of two images,
    both ends included (t = 0, ..., 1)."""
    start, end = latent_means(model, ends[:2])
    t = torch.linspace(0, 1, steps)[:, None]
    return (1 - t) * start + t * end


def posterior_sample(mu, logvar, generator: torch.Generator) -> torch.Tensor:
    """z = mu + exp(logvar / 2) * eps, eps ~ N(0, I) from the given generator."""
    return mu + torch.exp(0.5 * logvar) * torch.randn(mu.shape, generator=generator)


@torch.no_grad()
def decode(model, z, batch_size: int = 500) -> dict:
    """Decode latents batch by batch into named outputs, with `mix` added for split models."""
    was_training = model.training
    model.eval()
    device = model_device(model)
    parts = [model.decode(z[i:i + batch_size].to(device)) for i in range(0, len(z), batch_size)]
    model.train(was_training)
    return _with_mix({name: torch.cat([p[name].float().cpu() for p in parts]) for name in parts[0]})


def _with_mix(outputs: dict) -> dict:
    if "x1" in outputs:
        outputs["mix"] = mix_halves(outputs["x1"], outputs["x2"])
    return outputs


def mix_halves(first, second) -> torch.Tensor:
    """The SVAE's `mix`: rows of first for the first half, of second for the rest. Features are per
    image, so the features of mix are mix_halves of the features of x1 and x2 (bench/trial.py)."""
    half = len(first) // 2
    return torch.cat([torch.as_tensor(first[:half]), torch.as_tensor(second[half:])])


ORIENTATION_IMAGES = 1000
COMPONENT_RULE = ("x1 is the component that sigma weights more on average (mean sigma >= 0.5), decided "
                  f"once per seed on reconstructions (sampled z) of the first {ORIENTATION_IMAGES} training "
                  "images, never on scored samples; where sigma weighted the decoder's second component "
                  "more, the two are swapped and sigma replaced by 1 - sigma, so x_hat is unchanged.")
ORIENTATION_SEED_OFFSET = 7919  # the draw's generator: seed + this, apart from every sampler's


def orient_components(model, train_images, seed: int):
    """{"swapped": bool, "mean_sigma": float} by COMPONENT_RULE, or None for a model without sigma."""
    g = torch.Generator().manual_seed(seed + ORIENTATION_SEED_OFFSET)
    mu, logvar = latent_posteriors(model, train_images[:ORIENTATION_IMAGES])
    outputs = decode(model, posterior_sample(mu, logvar, g))
    if "sigma" not in outputs:
        return None
    mean_sigma = float(outputs["sigma"].double().mean())
    return {"swapped": mean_sigma < 0.5, "mean_sigma": mean_sigma}


def is_orientation(value) -> bool:
    """Whether value is what orient_components returns (a recorded orientation.json read back)."""
    return value is None or (isinstance(value, dict) and isinstance(value.get("swapped"), bool))


def oriented(outputs: dict, orientation) -> dict:
    """outputs with x1 and x2 named by the orientation: swapped (and sigma -> 1 - sigma) if it says so."""
    if not orientation or not orientation["swapped"]:
        return outputs
    swapped = {**outputs, "x1": outputs["x2"], "x2": outputs["x1"], "sigma": 1 - outputs["sigma"]}
    return _with_mix(swapped)


def fit_gmm(means: torch.Tensor, cfg: GMMConfig, seed: int, components: int | None = None):
    """sklearn's GaussianMixture fitted to means."""
    from sklearn.mixture import GaussianMixture  # here: sklearn is two seconds of every command's start-up

    gmm = GaussianMixture(n_components=min(components or cfg.components, len(means)), covariance_type=cfg.covariance,
                          max_iter=cfg.max_iter, random_state=seed)
    return gmm.fit(means.double().numpy())


def choose_components(means: torch.Tensor, cfg: GMMConfig, seed: int) -> dict:
    """{"components": the chosen count, "heldout_loglik": {count: mean held-out log-likelihood}}:
    `cfg.components` itself when cfg.select is "fixed", else by GMMConfig's held-out rule."""
    choose("gmm.select", cfg.select, dict.fromkeys(GMM_SELECTIONS))
    if cfg.select == "fixed":
        return {"components": min(cfg.components, len(means)), "heldout_loglik": {}}
    order = torch.randperm(len(means), generator=torch.Generator().manual_seed(seed))
    n_held = max(1, round(cfg.heldout_share * len(means)))
    held, fit = means[order[:n_held]], means[order[n_held:]]
    counts = [c for c in COMPONENT_LADDER if c <= min(cfg.components, len(fit))] or [1]
    scores = {c: float(fit_gmm(fit, cfg, seed, c).score(held.double().numpy())) for c in counts}
    return {"components": max(scores, key=scores.get), "heldout_loglik": scores}


def _gmm_latents(model, n, g, *, train_images, test_images, gmm: GMMConfig, seed: int, facts: dict):
    fit_images = (train_images if gmm.fit_on == "train" else test_images)[:gmm.fit_n]
    means = latent_means(model, fit_images)
    choice = choose_components(means, gmm, seed)
    facts.update({"gmm_components": choice["components"], "gmm_heldout_loglik": choice["heldout_loglik"]})
    z, _ = fit_gmm(means, gmm, seed, choice["components"]).sample(n)
    return torch.from_numpy(z).float()[torch.randperm(n, generator=g)]  # sklearn orders by component


def _prior_latents(model, n, g, *, test_images, **_):
    dim = latent_means(model, test_images[:1]).shape[1]
    return torch.randn(n, dim, generator=g)


def _second_stage_latents(model, n, g, **_):
    return model.second_stage_latents(n, g)


def _recon_latents(model, n, g, *, test_images, **_):
    return posterior_sample(*latent_posteriors(model, test_images[:n]), g)


def _recon_mean_latents(model, n, g, *, test_images, **_):
    return latent_means(model, test_images[:n])


@dataclass(frozen=True)
class SamplerEntry:
    title: str  # the heading of its table
    description: str  # how it draws z, for captions and the manifest
    draw: Callable  # (model, n, generator, *, train_images, test_images, gmm, seed, facts) -> n x d latents
    models: tuple | None = None  # the models it applies to; None: every model
    scored: bool = True  # run by every trial; False: available by name only


SAMPLERS = {
    "gmm": SamplerEntry("GMM sampler (ex-post Gaussian mixture, the paper's)",
                        "z from a Gaussian mixture fitted ex post to latent means mu(x)", _gmm_latents),
    "prior": SamplerEntry("prior sampler (z ~ N(0, I))", "z ~ N(0, I)", _prior_latents),
    "second-stage": SamplerEntry("second-stage sampler (two-stage VAE)", "z = f2(u) + sqrt(gamma_z) * eps, u ~ N(0, I)",
                                 _second_stage_latents, models=("two-stage",)),
    "recon": SamplerEntry("reconstructions of test images (a posterior sample z decoded, as the reference codes)",
                          "z = mu(x) + exp(logvar(x) / 2) * eps for the first n test images", _recon_latents),
    "recon-mean": SamplerEntry("reconstructions of test images from the posterior mean",
                               "mu(x) of the first n test images (not the reference codes' protocol)",
                               _recon_mean_latents, scored=False),
}


def samplers_for(model: str) -> list:
    """The names of the scored samplers that apply to a model, in registry order."""
    return [name for name, entry in SAMPLERS.items()
            if entry.scored and (entry.models is None or model in entry.models)]


def sample_latents(model, sampler: str, n: int, *, train_images, test_images, gmm: GMMConfig, seed: int,
                   facts: dict | None = None):
    """n latents from the named sampler, drawn with a generator seeded by `seed`. `facts`, if given,
    receives what the sampler chose on the way (the GMM: gmm_components, gmm_heldout_loglik)."""
    g = torch.Generator().manual_seed(seed)
    return choose("sampler", sampler, SAMPLERS).draw(model, n, g, train_images=train_images, test_images=test_images,
                                                     gmm=gmm, seed=seed, facts={} if facts is None else facts)
