"""The method at its authors' settings beside the method tuned alike (issue 22): one page from two runs of
one config, one whose knobs were searched (bench/search.py) and one run with `bench.run --no-search`,
where every knob keeps its as-published value (the preset's) at the study's full budget.

    python -m reports.as_published runs/cpu-mnist runs/cpu-mnist-published --out as_published.md

Each run keeps one protocol and decides its own claims; this page only puts them side by side: each
model's headline figure (its x_hat at its own sampler, and the split model's components) under both
protocols with the difference and its 95% Welch interval, and each claim's verdict under both. It
refuses two runs that differ in anything but the search (settings, protocol, the deciding metric's
network and weights), so what differs between its columns is the tuning alone.
"""
if __name__ == "__main__":  # first, so that Ctrl-C while the imports below load is one line
    from svae.interrupt import quiet_until_main
    quiet_until_main()

import argparse
import sys

from reports.claims import check_claims
from reports.headline import COMPONENTS, headline
from reports.rundir import Run, load_run
from reports.stats import welch_interval
from reports.tables import MISSING, fd_domain_warning
from reports.validate import validate_results
from svae.command import HelpFormatter, run_command
from svae.errors import HarnessError
from svae.interrupt import interrupts_raise
from svae.io import atomic_write_text, writable_file

ORDER = ("x_hat", *COMPONENTS)  # a model's rows: its x_hat, then the split model's components
SEARCH_KEYS = ("search", "tuned")  # the settings the search itself sets; every other must be equal
SAME_CONFIG = "the as-published run must be the same config run again with bench.run --no-search"
SCORED_ALIKE = "score both alike (bench.rescore the other run with the same network and --fid-samples)"


def compare_runs(tuned_dir, published_dir) -> str:
    """as_published.md's text for a searched run and its as-published companion."""
    runs = []
    for run_dir in (tuned_dir, published_dir):
        validate_results(run_dir)  # damaged results are refused before anything is read
        runs.append(load_run(run_dir))
    tuned, published = runs
    check_companions(tuned, published)
    lines = ["# At the authors' settings and tuned alike", "", *_introduction(tuned, published)]
    for dataset in tuned.datasets:
        lines += [f"## {tuned.dataset_label(dataset)}", "", *_headline_rows(tuned, published, dataset), ""]
    return "\n".join(lines + _claim_rows(tuned, published))


def check_companions(tuned: Run, published: Run) -> None:
    """Refuse a pair that is not one config with and without the search, naming the difference."""
    if not _searched(tuned):
        raise HarnessError(f"{tuned.path}: its knobs were not searched; give first the run made with the "
                           "search (bench.run --search), then its --no-search companion")
    if _searched(published):
        raise HarnessError(f"{published.path}: its knobs were searched; {SAME_CONFIG}")
    for dataset in published.datasets:
        if _settings(published, dataset).get("tuned"):
            raise HarnessError(f"{published.path}: its {dataset} settings hold tuned values "
                               f"({_settings(published, dataset)['tuned']}); {SAME_CONFIG}")
    for what, facts, fix in (
            ("datasets", lambda run: run.datasets, SAME_CONFIG),
            ("models", lambda run: run.models, SAME_CONFIG),
            ("seeds", lambda run: run.config.get("seeds_list", run.config.get("seeds")),
             "give both the same seeds (bench.run --resume --seeds N adds seeds to a finished run)"),
            ("settings", lambda run: {d: _unsearched_settings(run, d) for d in run.datasets}, SAME_CONFIG),
            ("data", _data_files, "run both on the same files"),
            ("protocol", lambda run: run.protocol, SAME_CONFIG),
            ("scoring", _scoring, SCORED_ALIKE)):
        a, b = facts(tuned), facts(published)
        if a != b:
            raise HarnessError(f"the two runs differ in their {what} ({_difference(a, b)}); {fix}")


def _searched(run: Run) -> bool:
    search = run.manifest.get("search")
    return isinstance(search, dict) and bool(search.get("enabled"))


def _settings(run: Run, dataset: str) -> dict:
    settings = run.config.get("settings")
    if not isinstance(settings, dict) or not isinstance(settings.get(dataset), dict):
        raise HarnessError(f"{run.path}: its manifest records no settings for {dataset} (a run made before "
                           "the search, or a damaged manifest); run the study again with this version")
    return settings[dataset]


def _unsearched_settings(run: Run, dataset: str) -> dict:
    return {k: v for k, v in _settings(run, dataset).items() if k not in SEARCH_KEYS}


def _data_files(run: Run) -> dict:
    """dataset -> split -> the sha256 of the files read (where they lay does not matter)."""
    data = run.manifest.get("data") or {}
    return {d: {split: sorted(f.get("sha256") for f in files) for split, files in splits.items()}
            for d, splits in data.items() if isinstance(splits, dict)}


def _scoring(run: Run) -> dict:
    """The deciding metric and, per dataset, the networks (with their weights) and sample counts behind it."""
    rows = run.results[run.results["metric"] == run.deciding_metric]
    return {"metric": run.deciding_metric,
            **{d: sorted(set(zip(*(rows.loc[rows["dataset"] == d, c].astype(str)
                                   for c in ("extractor_id", "n_samples", "reference_n")))))
               for d in run.datasets}}


def _difference(a, b) -> str:
    """The first key (or the values) where a and b differ, as 'key: a against b'."""
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b)):
            if a.get(key) != b.get(key):
                inner = _difference(a.get(key), b.get(key))
                return f"{key}.{inner}" if isinstance(a.get(key), dict) and isinstance(b.get(key), dict) \
                    else f"{key}: {a.get(key)!r} against {b.get(key)!r}"
    return f"{a!r} against {b!r}"


def _introduction(tuned: Run, published: Run) -> list:
    search = tuned.manifest["search"]
    warning = [] if tuned.is_fid else [fd_domain_warning(), ""]
    return warning + [f"Two runs of one config, the same in every setting but the search: **tuned** "
            f"({tuned.manifest.get('name', tuned.path.name)}), every model's regularisation knob searched alike "
            f"on a validation split ({len(search.get('seeds', []))} seeds per candidate, "
            f"{search.get('epoch_fraction', 0):g} of the epochs); **as published** "
            f"({published.manifest.get('name', published.path.name)}), every knob at the preset's as-published "
            "value (docs/fidelity.md gives each value's source). "
            "Both train every model for the study's full budget, with the same seeds. The first run answers "
            "for the method tuned as fairly as its rivals, the second for every model at its published "
            "settings: in it the rivals are untuned too.", "",
            f"Figures: {tuned.metric} (lower is better) of each model's x_hat at its own sampler, and the split "
            "model's components; mean ± sample std over the finished seeds. \"tuned - as published\" is the "
            "difference of the means with its 95% Welch interval, uncorrected: it describes what the tuning "
            "did and decides no claim (each run's claims.md does, with its own corrections). \"rank\" is the "
            "row's place in its run's headline, best first (the split model's components rank too).", ""]


def _knobs(tuned: Run, dataset: str, model: str) -> str:
    search = tuned.manifest["search"]
    if model in search.get("not_searched", {}):
        return f"not searched ({search['not_searched'][model]})"
    for r in search.get("results", []):
        if r["dataset"] == dataset and r["model"] == model:
            if not isinstance(r.get("chosen"), dict):  # a record from before every model was searched alike
                return f"{r.get('knob')} → {r.get('chosen')}"
            return ", ".join(f"{k} {r['published'][k]:g} → {v:g}" for k, v in r["chosen"].items())
    return "not searched"


def _headline_rows(tuned: Run, published: Run, dataset: str) -> list:
    tuned_rank, published_rank = ({(e.model, e.output): i for i, e in enumerate(headline(run, dataset), 1) if e.n}
                                  for run in (tuned, published))
    lines = ["| model | knob: as published → tuned | as published | rank | tuned | rank | tuned - as published "
             "[95% Welch interval, uncorrected] |", "|---|---|---:|---:|---:|---:|---:|"]
    entries = {(e.model, e.output): e for e in headline(published, dataset)}
    for entry in sorted(headline(tuned, dataset), key=lambda e: (tuned.models.index(e.model), ORDER.index(e.output))):
        key = (entry.model, entry.output)
        other = entries.get(key)
        diff, interval = welch_interval(entry.values, other.values if other else [])
        shown = MISSING if diff is None else f"{diff:+.2f}" + (
            "" if interval is None else f" [{interval[0]:+.2f}, {interval[1]:+.2f}]")
        knob = _knobs(tuned, dataset, entry.model) if entry.output == "x_hat" or not entry.split else "(as x_hat)"
        lines.append(f"| {entry.label} | {knob} | {other.text() if other else MISSING} "
                     f"| {published_rank.get(key, MISSING)} | {entry.text()} | {tuned_rank.get(key, MISSING)} "
                     f"| {shown} |")
    return lines


def _claim_rows(tuned: Run, published: Run) -> list:
    verdicts = [{(v.dataset, v.claim): v for v in check_claims(run)[1]} for run in (published, tuned)]
    lines = ["## Claim verdicts under each protocol", "",
             "Each run's own verdicts (its claims.md gives the rules, intervals and reasons).", "",
             "| dataset | claim | as published | tuned |", "|---|---|---|---|"]
    for (dataset, claim), verdict in verdicts[1].items():
        before = verdicts[0].get((dataset, claim))
        lines.append(f"| {tuned.dataset_label(dataset)} | {claim} | {before.verdict if before else MISSING} "
                     f"| {verdict.verdict} |")
    return lines + [""]


def main(argv=None) -> int:
    interrupts_raise()
    parser = argparse.ArgumentParser(
        prog="python -m reports.as_published", formatter_class=HelpFormatter,
        description="One page beside two runs of one config: the searched run and its --no-search companion "
                    "(every knob as published): headline figures and claim verdicts under both protocols.")
    parser.add_argument("tuned", metavar="TUNED_RUN", help="the run directory made with the search")
    parser.add_argument("published", metavar="AS_PUBLISHED_RUN",
                        help="the same config's run directory made with bench.run --no-search")
    parser.add_argument("--out", required=True, metavar="FILE.md", help="where the page is written")
    args = parser.parse_args(argv)

    def body() -> int:
        out = writable_file(args.out, "--out", "choose a file path in an existing folder")
        atomic_write_text(out, compare_runs(args.tuned, args.published))
        print(f"wrote {args.out}")
        return 0
    return run_command(body)


if __name__ == "__main__":
    sys.exit(main())
