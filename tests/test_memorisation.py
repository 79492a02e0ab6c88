"""The sampler's memorisation, measured: the GMM's component count chosen on held-out likelihood, and
the nearest-neighbour check (bench/memorisation.py) that the report shows beside the headline."""
import json

import pandas as pd
import pytest
import torch

from bench.gamma import AT_LIMIT, TRACKS
from bench.memorisation import EXTRACTOR_ID, memorisation
from reports.memorisation import COPYING, FIRST_VERSION_NOTE, LADDER_TOP, NOT_COPYING, memorisation_section
from reports.rundir import load_run
from svae.data import make_synthetic
from svae.samplers import GMMConfig, choose_components
from tests.report_fixtures import make_run

TRAIN = make_synthetic(1500, seed=0).images
TEST = make_synthetic(1500, seed=1).images
FRESH = make_synthetic(600, seed=2).images  # the same distribution, owing nothing to either set


def test_a_model_that_returns_its_training_images_is_nearer_the_training_set():
    copied = memorisation(TRAIN[:600], TRAIN, TEST)
    # 1 but for the odd synthetic image that also lies in the test set (a tie counts one half)
    assert copied.share > 0.99 and copied.copies > 0.98
    assert (copied.n, copied.train_n, copied.held_out_n, copied.chance) == (600, 1500, 1500, 0.5)


def test_copies_of_any_training_image_count_not_only_of_the_first_ones():
    train = make_synthetic(6000, seed=0).images  # the first version searched the first 5,000 only
    late = memorisation(train[-500:], train, TEST)
    assert late.chance == 6000 / 7500 and late.share > 0.99 and late.copies > 0.95


def test_fresh_draws_sit_at_chance_and_reconstructions_of_test_images_below():
    fresh = memorisation(FRESH, TRAIN, TEST)
    assert abs(fresh.share - 0.5) < 0.09 and abs(fresh.copies) < 0.18  # ~4 binomial standard deviations
    fewer_held_out = memorisation(FRESH, TRAIN, TEST[:500])  # chance 1500 / 2000
    assert fewer_held_out.chance == 0.75 and abs(fewer_held_out.share - 0.75) < 0.08
    assert memorisation(TEST[:600], TRAIN, TEST).copies < -0.95  # the held-out images themselves
    half = memorisation(torch.cat([TRAIN[:300], FRESH[:300]]), TRAIN, TEST)
    assert 0.68 < half.share < 0.82 and 0.36 < half.copies < 0.64  # half of them copies


VAE_SETTINGS = "pixel-l2,held_out_n=10000,chance=0.857143"  # the whole splits of MNIST


def with_memorisation_rows(run_dir, gamma_checks=None):
    """The reports fixture with an nn_train_share row per finished trial: the VAE's 0.9 against a chance of
    6/7 (copies (0.9 - 6/7) / (1/7) = 0.3, flagged); the SVAE's 0.52 of the first version, which records
    no chance (1/2: copies 0.04); and, if given, each row's gamma_check from gamma_checks(model, seed)."""
    results = pd.read_csv(run_dir / "results.csv")
    gmm = results[(results["sampler"] == "gmm") & (results["output"] == "x_hat")].drop_duplicates("trial_id")
    extra = gmm.assign(metric="nn_train_share", higher_is_better=False, extractor="pixels",
                       value=[0.9 if m == "vae" else 0.52 for m in gmm["model"]], gmm_components=10,
                       extractor_id=[EXTRACTOR_ID if m == "vae" else "pixels:l2" for m in gmm["model"]],
                       settings=[VAE_SETTINGS if m == "vae" else "pixel-l2,median_ratio=1.0" for m in gmm["model"]])
    results = pd.concat([results, extra])
    if gamma_checks:
        results["gamma_check"] = [gamma_checks(m, s) for m, s in zip(results["model"], results["seed"])]
    results.to_csv(run_dir / "results.csv", index=False)
    return run_dir


def test_the_report_flags_the_copying_model_beside_the_headline(tmp_path):
    lines = memorisation_section(load_run(with_memorisation_rows(make_run(tmp_path))))
    (vae,) = [line for line in lines if line.startswith("| MNIST | VAE | gmm |")]
    (svae,) = [line for line in lines if line.startswith("| MNIST | SVAE | gmm |")]
    assert f"| 0.900 (n = 4) | 0.857 | +0.300 | **{COPYING}** | 10, 10, 10, 10 |" in vae  # one count per seed
    assert f"| 0.520 (n = 5) | 0.500 | +0.040 ({FIRST_VERSION_NOTE}) | {NOT_COPYING} |" in svae
    assert all("not recorded" in line for line in (vae, svae))  # a run without the gamma column
    (null,) = [line for line in lines if line.startswith("Measured null")]  # MNIST's, beside current rows only
    assert "+0.12 ± 0.02 on MNIST" in null and "not exchangeable" in null and "0.08 above that null" in null


def test_the_measured_null_is_not_printed_beside_a_run_trained_on_a_subset(tmp_path):
    run_dir = with_memorisation_rows(make_run(tmp_path))
    results = pd.read_csv(run_dir / "results.csv")
    results["settings"] = results["settings"].str.replace(f"chance={6 / 7:.6f}", f"chance={1 / 6:.6f}")
    results.to_csv(run_dir / "results.csv", index=False)
    lines = memorisation_section(load_run(run_dir))
    assert any("| 0.167 |" in line for line in lines)  # the subset's chance, 2,000 of 12,000 images
    assert not any(line.startswith("Measured null") for line in lines)  # measured on the whole splits only


def test_a_current_row_without_its_chance_is_missing_not_read_as_one_half(tmp_path):
    run_dir = with_memorisation_rows(make_run(tmp_path))
    results = pd.read_csv(run_dir / "results.csv")
    results.loc[results["metric"] == "nn_train_share", "settings"] = None  # lost: 0.9 vs 1/2 would read 0.8
    results.to_csv(run_dir / "results.csv", index=False)
    (vae,) = [line for line in memorisation_section(load_run(run_dir)) if line.startswith("| MNIST | VAE | gmm |")]
    assert "| — | — | — | — |" in vae and COPYING not in vae


def test_the_report_gives_each_models_gamma_check_with_its_seed_counts(tmp_path):
    checks = {0: AT_LIMIT, 1: AT_LIMIT, 2: AT_LIMIT, 3: TRACKS}  # the VAE's four finished MNIST seeds
    run_dir = with_memorisation_rows(make_run(tmp_path), lambda model, seed: checks[seed] if model == "vae" else None)
    lines = memorisation_section(load_run(run_dir))
    (vae,) = [line for line in lines if line.startswith("| MNIST | VAE |")]
    (svae,) = [line for line in lines if line.startswith("| MNIST | SVAE |")]
    assert vae.endswith(f"| {AT_LIMIT} (3 of 4 seeds); {TRACKS} (1 of 4 seeds) |"), vae
    assert svae.endswith("| not learned |"), svae


def test_gmm_components_are_chosen_on_held_out_likelihood():
    g = torch.Generator().manual_seed(0)
    one_gaussian = torch.randn(400, 8, generator=g)  # 50 full-covariance components would memorise it
    choice = choose_components(one_gaussian, GMMConfig(components=50), seed=0)
    assert choice["components"] in (1, 2) and set(choice["heldout_loglik"]) == {1, 2, 5, 10, 20, 50}
    assert max(choice["heldout_loglik"], key=choice["heldout_loglik"].get) == choice["components"]
    clusters = torch.cat([torch.randn(100, 2, generator=g) * 0.1 + torch.tensor(c) for c in
                          [(0.0, 0.0), (5.0, 0.0), (0.0, 5.0), (5.0, 5.0), (10.0, 10.0)]])
    assert choose_components(clusters, GMMConfig(components=10), seed=0)["components"] == 5
    fixed = choose_components(one_gaussian, GMMConfig(components=50, select="fixed"), seed=0)
    assert fixed == {"components": 50, "heldout_loglik": {}}


def test_an_unknown_gmm_selection_is_one_line_before_anything_runs():
    from bench.presets import sweep_settings
    from svae.errors import HarnessError
    with pytest.raises(HarnessError, match="unknown gmm.select 'bic'; choose from heldout, fixed"):
        sweep_settings({"preset": "smoke", "overrides": {"gmm.select": "bic"}}, "synthetic")


def test_a_count_at_the_top_of_the_counts_tried_is_marked(tmp_path):
    run_dir = make_run(tmp_path)
    results = pd.read_csv(run_dir / "results.csv")
    gmm = results[(results["sampler"] == "gmm") & (results["output"] == "x_hat")].drop_duplicates("trial_id")
    extra = gmm.assign(metric="nn_train_share", higher_is_better=False, extractor="pixels", value=0.5,
                       gmm_components=10)
    pd.concat([results, extra]).to_csv(run_dir / "results.csv", index=False)
    run = load_run(run_dir)
    (vae_seed0, vae_trial), *_ = run.trials("mnist", "vae")
    (_, svae_trial), *_ = run.trials("mnist", "svae")
    top_at_10 = {"gmm_components": 10, "gmm_heldout_loglik": {"1": -9.0, "5": -8.0, "10": -7.5}}
    below_top = {"gmm_components": 10, "gmm_heldout_loglik": {"1": -9.0, "10": -7.0, "20": -7.2}}
    (run_dir / "trials" / vae_trial / "sampler_facts.json").write_text(json.dumps(top_at_10))
    (run_dir / "trials" / svae_trial / "sampler_facts.json").write_text(json.dumps(below_top))
    lines = memorisation_section(load_run(run_dir))
    [vae] = [line for line in lines if "| MNIST | VAE | gmm |" in line]
    [svae] = [line for line in lines if "| MNIST | SVAE | gmm |" in line]
    assert f"| 10 ({LADDER_TOP}), 10, 10, 10 |" in vae  # only the seed whose facts show 10 as the top
    assert "| 10, 10, 10, 10, 10 |" in svae and LADDER_TOP not in svae  # 10 below the 20 tried
