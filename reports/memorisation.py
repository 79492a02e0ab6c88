"""The memorisation line beside the headline: does a model win by copying its training images?

Per dataset and model, at the sampler it is compared at: the mean over seeds of `nn_train_share`
(bench/memorisation.py: the share of x_hat samples nearer, in pixels, a training image than a held-out
one), the share expected without copying (its row's `chance`), and the estimated share of samples
that copy a training image, (share - chance) / (1 - chance); then the GMM's component counts chosen
on held-out likelihood and the learned-gamma check, read from results.csv's columns where the run has
them.

COPYING flags an estimate of COPIES_FLAGGED or more: a fifth of the samples beyond chance. At 2,000
samples against MNIST's whole splits (chance 6/7) one seed's estimate has a binomial standard error
of about 0.055, the mean of five about 0.025. Rows of the first version (5,000 images of each split)
record no chance: it was 1/2, and their flag (a share of 0.6) was the same fifth.

Chance assumes the samples, the training split and the test split are exchangeable. NULL_COPIES is what
a model that copies nothing reads instead: training images held out of the reference stand for its
samples (scripts/memorisation_null.py). On MNIST, whose test writers are not its training writers, it
sits above 0, at 0.6 of the flag; the report prints it beside the rows. The flag stays absolute (fixed
before any study's figures were seen), so on MNIST a model is flagged 0.08 above that null.
"""
from reports.rundir import Run
from reports.stats import summarize
from reports.tables import MISSING

METRIC = "nn_train_share"
COPIES_FLAGGED = 0.2
FIRST_VERSION = "pixels:l2"  # its extractor id: the first 5,000 images of each split
FIRST_VERSION_CHANCE = 0.5  # it compared as many training as held-out images
COPYING, NOT_COPYING = "copies training images", "no sign of copying"
FIRST_VERSION_NOTE = "first version: copies of the first 5,000 training images only"
LADDER_TOP = "largest tried"
# (copies, standard error) read by 5 x 2,000 training images held out of the reference, against the rest
# of the training split and the whole test split (scripts/memorisation_null.py, 2026-12-06); it applies to
# rows that searched the whole splits (chance 6/7), not to a run trained on a subset (the smoke preset)
NULL_COPIES = {"mnist": (0.121, 0.023), "fashion-mnist": (0.010, 0.024)}
NULL_CHANCE = 60000 / 70000
WRITERS_NOTE = {"mnist": "MNIST's test writers are not its training writers"}


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


def chance_of(extractor_id, settings):
    """The share a row's samples reach without copying: its settings' "chance=..."; the first version's
    rows record none (it was 1/2); None for a row that should and does not."""
    for part in str(settings).split(","):
        if part.startswith("chance="):
            return float(part.removeprefix("chance="))
    return FIRST_VERSION_CHANCE if extractor_id == FIRST_VERSION else None


def copy_estimates(run: Run, dataset: str, model: str, sampler: str) -> list:
    """(seed, share, chance, estimated copies, first version?) of a model's memorisation rows with a known
    chance, seeds ascending."""
    r = run.results
    rows = r[(r["metric"] == METRIC) & (r["dataset"] == dataset) & (r["model"] == model)
             & (r["sampler"] == sampler) & (r["output"] == "x_hat")].sort_values("seed")
    found = []
    for row in rows.to_dict("records"):
        chance = chance_of(row.get("extractor_id"), row.get("settings"))
        if chance is not None:
            found.append((row["seed"], row["value"], chance, (row["value"] - chance) / (1 - chance),
                          row.get("extractor_id") == FIRST_VERSION))
    return found


def memorisation_section(run: Run) -> list:
    intro = (f"`{METRIC}`: the share of each model's samples (x_hat, at its own sampler) that lie nearer, in "
             "pixels, a training image than a held-out test image; chance: that share without copying (the "
             "training split's part of all the images searched); copies: the estimated share of samples that "
             "copy a training image, (share - chance) / (1 - chance), 0 without copying and 1 for a model that "
             f"returns its training images. At {COPIES_FLAGGED} or more the row is flagged. GMM components: the "
             "count chosen per seed on held-out likelihood, marked where it is the largest count tried (more "
             "might have scored higher). Gamma: for models that learn it, whether each seed's final gamma came "
             "within a factor of 2 of its reconstruction MSE.")
    if METRIC not in run.directions:
        absent = (f"Not measured: this run has no `{METRIC}` figures: its trials predate the check (their GMM's "
                  "component counts are the preset's), or it scored against the training split, which leaves no "
                  "held-out images to compare with.")
        return ["## Memorisation", "", absent]
    lines = ["## Memorisation", "", intro, "",
             f"| dataset | model | sampler | {METRIC} | chance | copies | verdict | GMM components | gamma |",
             "|---|---|---|---:|---:|---:|---|---|---|"]
    whole_splits = set()  # datasets with rows that searched the whole splits, as the null was measured
    for dataset in run.datasets:
        for model in run.models:
            sampler = run.compared_at(model)
            found = copy_estimates(run, dataset, model, sampler)
            if not found and not run.trials(dataset, model):
                continue
            share, _, n = summarize([f[1] for f in found])
            copies = summarize([f[3] for f in found])[0]
            chances = sorted({f"{f[2]:.3f}" for f in found})
            if any(abs(f[2] - NULL_CHANCE) < 0.01 for f in found):
                whole_splits.add(dataset)
            first = f" ({FIRST_VERSION_NOTE})" if any(f[4] for f in found) else ""
            cells = [f"{share:.3f} (n = {n})", "/".join(chances), f"{copies:+.3f}{first}",
                     f"**{COPYING}**" if copies >= COPIES_FLAGGED else NOT_COPYING] if n else [MISSING] * 4
            lines.append(f"| {run.dataset_label(dataset)} | {run.label(model)} | {sampler} | {' | '.join(cells)} | "
                         f"{_components_text(run, dataset, model)} | {_gamma_text(run, dataset, model)} |")
    return lines + _null_lines(run, whole_splits)


def _null_lines(run: Run, whole_splits: set) -> list:
    """The measured null beside the rows it applies to (whole_splits' datasets), and where it is not 0, why."""
    measured = [d for d in run.datasets if d in NULL_COPIES and d in whole_splits]
    if not measured:
        return []
    said = " and ".join(f"{NULL_COPIES[d][0]:+.2f} ± {NULL_COPIES[d][1]:.2f} on {run.dataset_label(d)}"
                        for d in measured)
    text = (f"Measured null: training images held out of the reference, standing for the samples of a model "
            f"that copies nothing, read copies of {said} (scripts/memorisation_null.py).")
    above = [d for d in measured if NULL_COPIES[d][0] > 2 * NULL_COPIES[d][1]]
    for d in above:
        why = f" ({WRITERS_NOTE[d]})" if d in WRITERS_NOTE else ""
        text += (f" On {run.dataset_label(d)} it is above 0: the test split is not exchangeable with the training "
                 f"split{why}, and the flag, fixed at {COPIES_FLAGGED}, lies "
                 f"{COPIES_FLAGGED - NULL_COPIES[d][0]:.2f} above that null.")
    return ["", text]


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
