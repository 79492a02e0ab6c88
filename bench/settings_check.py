"""The one check of a trial's Settings, before any work: bench.run (and its --dry-run), bench.rescore
and bench.curve call `check_settings` on the settings they are about to use, whatever set them (a
preset, a flag, --set, a manifest).

Every settable field has a rule here (tests/test_settings_check.py holds RULES to the dataclass): its
type, its range, finite numbers, names from their registries. Then the combinations that a dataset
decides: a batch no larger than the training images (the trainer drops an incomplete last batch),
an encoder that does not shrink the image below one pixel, a GMM with no more components than the
latents it is fitted on. What needs the data itself (fid_samples within the reference split) is
checked where the data is first read (bench.run check_data, bench.rescore, bench.curve).

Upper bounds are far above any sensible value: they turn a typo (batch_size=1000000000) into an
error line instead of an allocation that never returns.
"""
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bench.metrics.scoring import BACKBONES, METRICS
from bench.models import MODELS
from bench.overrides import field_types
from bench.presets import Settings, sweep_settings
from svae.data import SPECS
from svae.samplers import GMM_SELECTIONS
from svae.errors import HarnessError, did_you_mean

MAX_WIDTH = 8192  # channels or units of one layer
MAX_COUNT = 10**8  # images, samples, iterations
GMM_COVARIANCES = ("full", "tied", "diag", "spherical")  # scikit-learn's covariance_type
GMM_FIT_ON = ("train", "test")


@dataclass(frozen=True)
class Rule:
    holds: Callable[[Any], bool]
    says: str  # what the value must be, after "must be"


def count(low: int, high: int) -> Rule:
    return Rule(lambda v: _is_int(v) and low <= v <= high, f"a whole number from {low:,} to {high:,}")


def number(low: float, high: float = math.inf, low_open: bool = False) -> Rule:
    above = (lambda v: v > low) if low_open else (lambda v: v >= low)
    says = f"a finite number {'above' if low_open else 'at least'} {low:g}" + (f" and at most {high:g}"
                                                                               if high < math.inf else "")
    return Rule(lambda v: _is_number(v) and math.isfinite(v) and above(v) and v <= high, says)


def one_of(names) -> Rule:
    return Rule(lambda v: isinstance(v, str) and v in names, f"one of {', '.join(names)}")


def optional(rule: Rule) -> Rule:
    return Rule(lambda v: v is None or rule.holds(v), f"none or {rule.says}")


FLAG = Rule(lambda v: isinstance(v, bool), "true or false")
METRIC_NAMES = Rule(lambda v: isinstance(v, (tuple, list)) and len(v) > 0 and all(m in METRICS for m in v),
                    f"a non-empty list from {', '.join(METRICS)}")
BACKBONE_NAMES = Rule(lambda v: isinstance(v, (tuple, list)) and all(b in BACKBONES for b in v),
                     f"a list from {', '.join(BACKBONES)} (may be empty)")
# the search's choices (bench/search.py with_choices): (model, a field of its knob, a value that field allows)
TUNED = Rule(lambda v: isinstance(v, (tuple, list)) and all(_is_choice(t) for t in v),
             "a list of (model, a field of its knob, a finite number at least 0), as the search records them")

RULES = {
    "model.latent_dim": count(1, MAX_WIDTH),
    "model.beta": number(0),
    "model.backbone.base_width": count(1, MAX_WIDTH),
    "model.backbone.num_scales": count(1, 16),
    "model.backbone.embedding_dim": count(1, MAX_WIDTH),
    "model.backbone.max_width": count(1, MAX_WIDTH),
    "model.backbone.bn_momentum": number(0, 1),
    "model.beta_vae_beta": number(0),
    "model.beta_vae_gamma": number(0, low_open=True),
    "model.stage2_width": count(1, MAX_WIDTH),
    "model.stage2_depth": count(1, 64),
    "model.stage2_epoch_factor": number(0, 1000, low_open=True),
    "model.rae_penalty_scale": number(0),
    "epochs": count(1, 100_000),
    "batch_size": count(2, 65_536),  # BatchNorm needs two images in a batch
    "lr": number(0, 10, low_open=True),
    "lr_halving": optional(number(0, 1, low_open=True)),  # a share of the epochs
    "amp": FLAG,
    "channels_last": FLAG,
    "train_subset": optional(count(1, MAX_COUNT)),
    "fid_backbone": one_of(BACKBONES),
    "beside_backbones": BACKBONE_NAMES,
    "fid_samples": count(2, MAX_COUNT),
    "metrics": METRIC_NAMES,
    "gmm.components": count(1, 100_000),
    "gmm.covariance": one_of(GMM_COVARIANCES),
    "gmm.max_iter": count(1, MAX_COUNT),
    "gmm.fit_on": one_of(GMM_FIT_ON),
    "gmm.fit_n": count(2, MAX_COUNT),
    "gmm.select": one_of(GMM_SELECTIONS),
    "gmm.heldout_share": number(0, 0.9, low_open=True),
    "grid_samples": count(1, 10_000),
    "curve_every": count(0, 100_000),
    "curve_samples": count(2, MAX_COUNT),
    "search": FLAG,
    "tuned": TUNED,
}


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _is_choice(t) -> bool:
    return (isinstance(t, (tuple, list)) and len(t) == 3 and isinstance(t[0], str) and t[0] in MODELS
            and t[1] in MODELS[t[0]].knob and _is_number(t[2]) and math.isfinite(t[2]) and t[2] >= 0)


def value_at(settings, key: str):
    for part in key.split("."):
        settings = getattr(settings, part)
    return settings


def check_settings(settings: Settings, dataset: str) -> Settings:
    """settings, if every field and combination holds for dataset; else a one-line HarnessError that
    names the setting, the value and how to change it."""
    if not isinstance(settings, Settings):
        raise HarnessError(f"{dataset} settings are not a Settings record; check the run's manifest.json")
    spec = SPECS.get(dataset)
    if spec is None:
        raise HarnessError(f"unknown dataset {dataset!r}{did_you_mean(dataset, SPECS)}; choose from {', '.join(SPECS)}")
    for key, rule in RULES.items():
        value = value_at(settings, key)
        if not rule.holds(value):
            raise _bad(dataset, key, value, f"must be {rule.says}")
    for key, value, problem in _combinations(settings, spec):
        raise _bad(dataset, key, value, problem)
    return settings


def _combinations(s: Settings, spec):
    """(key, value, what is wrong) for each combination that fails on this dataset."""
    train_images = min(s.train_subset or spec.train_images, spec.train_images)
    if s.batch_size > train_images:
        yield "batch_size", s.batch_size, (f"must be at most the {train_images:,} training images "
                                           f"(train_subset, or {spec.label}'s training split)")
    if 2 ** s.model.backbone.num_scales > spec.size:
        yield ("model.backbone.num_scales", s.model.backbone.num_scales,
               f"halves {spec.label}'s {spec.size}-pixel images below one pixel; at most {int(math.log2(spec.size))}")
    if s.model.backbone.base_width * 2 ** (s.model.backbone.num_scales - 1) > MAX_WIDTH:
        yield ("model.backbone.base_width", s.model.backbone.base_width,
               f"doubled at each of {s.model.backbone.num_scales} scales exceeds {MAX_WIDTH} channels")
    latents = min(s.gmm.fit_n, train_images) if s.gmm.fit_on == "train" else s.gmm.fit_n
    if s.gmm.components > latents:
        yield "gmm.components", s.gmm.components, f"must be at most the {latents:,} latents it is fitted on (gmm.fit_n)"


def _bad(dataset: str, key: str, value, problem: str) -> HarnessError:
    return HarnessError(f"setting {key}={value!r} for {dataset}: {key} {problem}; change it with --set {key}=...")


def unruled_fields() -> list:
    """Settable fields without a rule (a test keeps this empty: a new field needs its rule here)."""
    return sorted(set(field_types(Settings)) ^ set(RULES))



def checked_sweep_settings(config: dict, dataset: str, source: str = "the command line") -> Settings:
    """sweep_settings(config, dataset), checked; a config that cannot even be applied (an unknown
    preset or --set key, a value of the wrong type: a damaged manifest) is a one-line error naming
    `source`."""
    overrides = config.get("overrides") or {}
    known = field_types(Settings)
    if not isinstance(overrides, dict):
        raise HarnessError(f"the overrides in {source} are not KEY=VALUE pairs; restore it from a copy of the run")
    for key in overrides:
        if key not in known:
            raise HarnessError(f"unknown setting {key!r} in {source}{did_you_mean(key, known)}; "
                               f"valid keys: {', '.join(known)}")
    try:
        settings = sweep_settings(config, dataset)
    except (TypeError, ValueError, AttributeError, KeyError) as e:
        raise HarnessError(f"the settings in {source} cannot be applied ({type(e).__name__}: {e}); "
                           f"restore it from a copy of the run") from None
    return check_settings(settings, dataset)
