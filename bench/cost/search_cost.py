"""The search's cost against the study's, from the plan's probe (bench/cost/plan.py): a line of the plan
that `--dry-run` prints, so its share of the study's time is known before it runs."""
from bench.models import MODELS
from bench.cost.plan import duration
from bench.search import EPOCH_FRACTION, FACTORS, MAX_WIDENING, SEEDS, budget, searched, validation_size


def candidate_seconds(plan, dataset: str, model: str) -> float:
    """One candidate at the probe's rates: its share of every stage's epochs on the training images
    less the validation split, then the GMM's fit images and the validation samples through the model,
    and the samples and validation images through the scoring network."""
    s, cell = plan.settings[dataset], plan.cells[dataset, model]
    n_train = cell.stages[0].images
    n_val = validation_size(n_train, s)
    fit = n_train - n_val
    train = sum(st.seconds * budget(s) / s.epochs * fit / n_train for st in cell.stages)
    return train + (n_val + min(s.gmm.fit_n, fit)) / cell.forward_per_s + 2 * n_val / cell.features_per_s


def search_lines(plan) -> list:
    models = searched(list(dict.fromkeys(spec.model for spec in plan.grid)))
    datasets = [d for d, s in plan.settings.items() if s.search]
    untuned = {m: MODELS[m].no_knob for m in dict.fromkeys(spec.model for spec in plan.grid) if not MODELS[m].knob}
    skipped = "; not searched: " + "; ".join(f"{m} ({why})" for m, why in untuned.items()) if untuned else ""
    if not datasets or not models:
        return [f"  search: off (the preset's or --no-search); every model keeps its preset value{skipped}"]
    per_round = sum(candidate_seconds(plan, d, m) for d in datasets for m in models)
    first = per_round * len(FACTORS) * len(SEEDS)
    widest = first + per_round * MAX_WIDENING * len(SEEDS)  # every search widened to its bound
    trials = sum(plan.trial_seconds().values())
    s = plan.settings[datasets[0]]
    return [f"  search: {len(models)} model(s) with a knob ({', '.join(models)}) x {len(FACTORS)} factors of the "
            f"as-published value x {len(SEEDS)} seeds, on {len(datasets)} dataset(s); each candidate "
            f"{budget(s)} of the study's {s.epochs} epochs ({EPOCH_FRACTION:g}, at least 1); ~{duration(first)} "
            "of trial time, "
            f"{first / (first + trials):.0%} of the study's (up to {widest / (widest + trials):.0%} if every "
            f"search widens {MAX_WIDENING} times){skipped}",
            f"  as published: the same config with --no-search (every knob at its as-published value, the full "
            f"budget) costs the trials again, ~{duration(trials)} of trial time; python -m reports.as_published "
            "puts the two runs side by side"]
