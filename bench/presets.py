"""Presets: the authors' settings per dataset (`paper`), a shrunken copy that shows the pipeline runs
(`smoke`), and the five-seed study on two CPU cores (`cpu`; results/fashion-mnist-cpu at its first 3 epochs).

The paper's latent size, KL weight and epochs are the dataset's spec (svae/data.py SPECS). The
two-stage VAE's second stage trains twice the first stage's epochs, as in Dai & Wipf's defaults
(400 + 800).
"""
from dataclasses import dataclass, field, replace

from bench.overrides import apply_overrides
from svae.backbone import BackboneConfig
from svae.config import ModelConfig
from svae.data import check_dataset
from svae.errors import choose
from svae.samplers import GMM_SELECTIONS, GMMConfig


@dataclass(frozen=True)
class Settings:
    """Everything one trial needs besides its dataset, model and seed."""
    model: ModelConfig
    epochs: int
    batch_size: int = 100
    lr: float = 1e-4
    # One learning-rate schedule for every model of a preset: halve the rate every lr_halving * epochs
    # epochs (Dai & Wipf's 150 of 400 is 0.375), None: constant, as the SVAE's code and every preset here
    lr_halving: float | None = None
    amp: bool = False  # bfloat16 autocast on GPUs; off by default, so GPU and CPU runs compute alike
    channels_last: bool = False  # channels_last memory in training (svae/trainer.py TrainConfig)
    train_subset: int | None = None  # train on the first n training images; None: all
    fid_backbone: str = "inception"  # or "domain": the offline fd_domain stand-in, never called FID; the search's
    # networks scored too, on the outputs the claims compare only (each model at its own sampler, every
    # output): FID beside fd_domain where Inception's CPU time would otherwise go to every sampler
    beside_backbones: tuple = ()
    fid_samples: int = 10000
    metrics: tuple = ("fid", "kid", "pr")  # bench/metrics: FID (fd_domain), KID, precision/recall/density/coverage
    gmm: GMMConfig = field(default_factory=GMMConfig)
    grid_samples: int = 64  # images per output saved for the reports' grids
    # Quality against epochs, in every trial (bench/trial.py CurveScores): after every curve_every-th epoch
    # of a model's last stage, and its last, the outputs of its own sampler scored with fid_backbone's
    # Frechet distance, curve_samples of them (at most fid_samples) against as many reference images;
    # 0: never. A cheaper score than the final one (fewer images, a GMM fitted on as many latents): its
    # shape says whether training had levelled off, its level is not the final figure's.
    curve_every: int = 0
    curve_samples: int = 2000
    search: bool = True  # tune every model's knob on a validation split first (bench/search.py)
    tuned: tuple = ()  # (model, ModelConfig field, value): the search's choices, each for its model only

    @property
    def curve_n(self) -> int:
        """The samples (and reference images) of each score against epochs: curve_samples, at most fid_samples."""
        return min(self.curve_samples, self.fid_samples)

    def backbones(self) -> tuple:
        """Every network the trials score with: fid_backbone, then beside_backbones."""
        return tuple(dict.fromkeys((self.fid_backbone, *self.beside_backbones)))

    def backbones_at(self, compared: bool) -> tuple:
        """The networks that score a sampler's outputs: all of them at the sampler the model is compared
        at (bench/models.py compared_at), else fid_backbone only."""
        return self.backbones() if compared else (self.fid_backbone,)


def model_settings(settings: Settings, model: str) -> Settings:
    """The settings a model's trials train with: the search's choices for that model in place."""
    chosen = {name: value for tuned_model, name, value in settings.tuned if tuned_model == model}
    return replace(settings, model=replace(settings.model, **chosen)) if chosen else settings


def paper_model_config(dataset: str) -> ModelConfig:
    spec = check_dataset(dataset)
    return ModelConfig(latent_dim=spec.latent_dim, beta=spec.beta)


def paper(dataset: str) -> Settings:
    """The authors' network and epochs; FID on every sampler, fd_domain beside it on the compared outputs;
    quality against epochs ten times in a trial (every 10 of MNIST's 100 epochs: a --set epochs leaves
    curve_every as it is, so set both)."""
    epochs = check_dataset(dataset).epochs
    return Settings(model=paper_model_config(dataset), epochs=epochs, beside_backbones=("domain",),
                    curve_every=max(1, epochs // 10))


def smoke(dataset: str) -> Settings:
    """Minutes on two CPU cores: a narrow network, 2,000 images, three epochs, fd_domain on 500 samples,
    no baseline search (--search turns it on).

    Smaller batches, a larger learning rate and a faster BatchNorm momentum let ~190 steps learn
    something visible (gamma balancing needs steps to fall from 1); the figures only show that the
    pipeline works, they are not results.
    """
    model = replace(paper_model_config(dataset),
                    backbone=BackboneConfig(base_width=16, embedding_dim=64, bn_momentum=0.1),
                    stage2_width=128, stage2_depth=2)
    return Settings(model=model, epochs=3, batch_size=32, lr=1e-3, train_subset=2000, fid_backbone="domain",
                    fid_samples=500, gmm=GMMConfig(components=10, max_iter=100, fit_n=2000), search=False,
                    curve_every=1, curve_samples=500)


def cpu(dataset: str) -> Settings:
    """The five-seed study on two CPU cores: every training image, a network narrow enough that all
    models x 5 seeds at 3 epochs, the beta-VAE search and the scoring finished in at most 120 minutes
    of wall time (results/fashion-mnist-cpu); since issue 22 every model's knob is searched and the
    epochs are 7, chosen on a validation split, so a study takes several hours;
    fd_domain, KID and precision/recall on 10,000 samples against 10,000 reference images; a GMM
    of up to 100 components (the count chosen on held-out likelihood) on 10,000 training latents.
    FID (Inception, and its KID and precision/recall) beside them on the outputs the claims compare:
    each model at its own sampler, with the SVAE's x_hat, x1, x2 and mix, 35 sets of 10,000 for five
    seeds, about 7 hours at Inception's 14 images/s on the 2 quiet cores (ONNX Runtime; docs/performance.md).
    `--fid-backbone domain` leaves it out; `python -m bench.rescore RUN --fid-backbone inception
    --compared-only --fid-threads 2` adds it later.

    Chosen by measurement on the 2-core machine (2026-11-29, torch 2.14.1), one torch thread per trial
    as the sweep runs them:
    - Training throughput of the SVAE through the Trainer (2,048 Fashion-MNIST images, images/s;
      contiguous / channels_last): base width 16, batch 64: 169 / 167; width 16, batch 128: 150 / 191;
      width 12, batch 128: - / 287; width 8, batch 128: 426 / 484 (single runs, a few percent of noise).
      Widths 24 and 32 ran at 65 and 41 (channels_last, batch 64, beside the test suite). The budget
      of the time (120 minutes for 25 trials of 60,000 images, the search, the scoring) bought about 3
      epochs at width 8 and about 1 at width 16, so width 8, batch 128, channels_last.
    - Epochs: 7, where the SVAE's and the VAE's curves level off on a validation split
      (results/calibration/fashion-mnist-cpu: python -m bench.curve --models svae vae --epochs 8
      --every 1, seed 0, fd_domain of x_hat, 2,000 GMM samples against the 2,000 training images held
      out of training; levelled: no later epoch improves it by 5% or more). After epochs 1-8: SVAE
      10.85, 7.12, 6.59, 6.38, 5.15, 4.95, 4.57, 4.50; VAE 11.96, 6.58, 7.13, 5.73, 5.11, 4.78, 4.54,
      4.45. The first choice, 3, was read off test-split curves of 4 epochs while the SVAE still gained
      (results/fashion-mnist-cpu/calibration). MNIST's curves had not levelled off by 8
      (results/calibration/mnist-cpu): configs/cpu-mnist.yaml trains 8.
    - Quality against epochs after every epoch (curve_every 1, 2,000 samples): one score took 3-4 s
      against 37-43 s for an epoch of 60,000 images (VAE, SVAE, RAE; 2026-12-07, one thread), 8-10%.
    - lr 1e-3 and BatchNorm momentum 0.1, as the smoke preset: 1,400 steps per trial are too few for
      1e-4 and for running statistics at 0.001.
    """
    model = replace(paper_model_config(dataset),
                    backbone=BackboneConfig(base_width=8, embedding_dim=64, bn_momentum=0.1),
                    stage2_width=128, stage2_depth=2)
    return Settings(model=model, epochs=7, batch_size=128, lr=1e-3, channels_last=True, fid_backbone="domain",
                    beside_backbones=("inception",), fid_samples=10000, gmm=GMMConfig(components=100, fit_n=10000),
                    search=True, curve_every=1)


PRESETS = {"paper": paper, "smoke": smoke, "cpu": cpu}


def settings_for(preset: str, dataset: str, gmm_fit_on: str | None = None, **overrides) -> Settings:
    """The preset's settings with the overrides that are not None; gmm_fit_on sets settings.gmm.fit_on."""
    settings = choose("preset", preset, PRESETS)(dataset)
    if gmm_fit_on is not None:
        settings = replace(settings, gmm=replace(settings.gmm, fit_on=gmm_fit_on))
    return replace(settings, **{k: v for k, v in overrides.items() if v is not None})


def sweep_settings(config: dict, dataset: str) -> Settings:
    """A dataset's settings from a sweep's defining config (bench.run's, or a manifest's): the preset,
    the flags that change it, then the --set overrides; the baseline search's choices come after
    (bench/search.py with_choices)."""
    settings = settings_for(config["preset"], dataset, gmm_fit_on=config.get("gmm_fit_on"),
                            fid_samples=config.get("fid_samples"), fid_backbone=config.get("fid_backbone"),
                            beside_backbones=() if config.get("fid_backbone") else None,  # --fid-backbone: only it
                            search=config.get("search"), amp=config.get("amp") or None)
    settings = apply_overrides(settings, config.get("overrides") or {})
    choose("gmm.select", settings.gmm.select, dict.fromkeys(GMM_SELECTIONS))  # before anything runs
    return settings
