"""The memorisation line beside the headline: does a model win by copying its training images?

Per dataset and model, at the sampler it is compared at: the mean over seeds of `nn_train_share`
(bench/memorisation.py: the share of x_hat samples nearer, in pixels, a training image than a held-out
one; 0.5 without copying), the GMM's component counts chosen on held-out likelihood, and the
learned-gamma check, read from results.csv's columns where the run has them.

COPYING_SHARE flags a mean share: at 0.6 a fifth of the samples beyond chance are nearer the training
set (0.5 + c / 2 for a share c of copies), about 6 binomial standard deviations above 0.5 at the
1,000 samples each figure tests.
"""
from reports.rundir import Run
from reports.stats import summarize
from reports.tables import MISSING

METRIC = "nn_train_share"
COPYING_SHARE = 0.6
COPYING, NOT_COPYING = "copies training images", "no sign of copying"
LADDER_TOP = "largest tried"


def _column_pairs(run: Run, dataset: str, model: str, column: str) -> list:
    """(seed, value) of a trial column for a (dataset, model), one per seed, seeds ascending."""
    results = run.results
    if column not in results.columns:
        return []
    rows = results[(results["dataset"] == dataset) & (results["model"] == model)].dropna(subset=[column])
    rows = rows.drop_duplicates("seed").sort_values("seed")
    return list(zip(rows["seed"], rows[column]))


def _column_values(run: Run, dataset: str, model: str, column: str) -> list:
    """The distinct values of a trial column for a (dataset, model), one per seed, seeds ascending."""
    return [value for _, value in _column_pairs(run, dataset, model, column)]


def memorisation_section(run: Run) -> list:
    intro = (f"`{METRIC}`: the share of each model's samples (x_hat, at its own sampler) that lie nearer a "
             "training image than a held-out test image, in pixels; 0.5 without copying, 1 for a model "
             f"that returns its training images. At {COPYING_SHARE} or more the row is flagged. GMM "
             "components: the count chosen per seed on held-out likelihood, marked where it is the largest count "
             "tried (more might have scored higher). Gamma: for models that learn "
             "it, whether each seed's final gamma came within a factor of 2 of its reconstruction MSE.")
    if METRIC not in run.directions:
        absent = (f"Not measured: this run has no `{METRIC}` figures (its trials predate the check); the GMM's "
                  "component counts are the preset's.")
        return ["## Memorisation", "", absent]
    lines = ["## Memorisation", "", intro, "",
             f"| dataset | model | sampler | {METRIC} | verdict | GMM components | gamma |",
             "|---|---|---|---:|---|---|---|"]
    for dataset in run.datasets:
        for model in run.models:
            sampler = run.compared_at(model)
            mean, _, n = summarize(list(run.seed_values(METRIC, sampler, dataset, model, "x_hat").values()))
            if not n and not run.trials(dataset, model):
                continue
            share = f"{mean:.3f} (n = {n})" if n else MISSING
            verdict = MISSING if not n else f"**{COPYING}**" if mean >= COPYING_SHARE else NOT_COPYING
            components = _components_text(run, dataset, model)
            lines.append(f"| {run.dataset_label(dataset)} | {run.label(model)} | {sampler} | {share} | {verdict} | "
                         f"{components} | {_gamma_text(run, dataset, model)} |")
    return lines


def _components_text(run: Run, dataset: str, model: str) -> str:
    """Each seed's chosen count; one at the top of the counts tried is marked, since the held-out
    likelihood may have gone on rising beyond it (a larger gmm.components would try more)."""
    chosen = dict(_column_pairs(run, dataset, model, "gmm_components"))
    texts = []
    for seed, trial_id in run.trials(dataset, model):
        if seed in chosen:
            tried = run.gmm_counts_tried(trial_id)
            at_top = len(tried) > 1 and chosen[seed] == tried[-1]
            texts.append(f"{chosen[seed]:g}" + (f" ({LADDER_TOP})" if at_top else ""))
    return ", ".join(texts) or MISSING


def _gamma_text(run: Run, dataset: str, model: str) -> str:
    if "gamma_check" not in run.results.columns:
        return "not recorded"
    checks = _column_values(run, dataset, model, "gamma_check")
    if not checks:
        return "not learned"
    return "; ".join(f"{check} ({checks.count(check)} of {len(checks)} seeds)" for check in dict.fromkeys(checks))
