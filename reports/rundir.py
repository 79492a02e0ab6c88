"""Read a run directory (docs/run_directory.md) into one object.

This is the only module of reports that opens the run's input files; everything else works on the
`Run` it returns, so a malformed directory fails here, once, with a HarnessError that says what to fix.
"""
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from svae.contract import METRIC_ORDER, REAL_FID, REQUIRED_COLUMNS, is_frechet, metric_label
from svae.errors import HarnessError
from svae.io import read_status
from svae.preview import load_preview
from svae.samplers import is_orientation

GENERATORS = ("gmm", "prior")  # samplers of generated images, the paper's first
KEY = ["dataset", "model", "seed", "sampler", "output", "metric"]  # one figure per key
METRICS_COLUMNS = ("stage", "epoch", "loss", "kl", "gamma")  # the ones the figures read
CURVE_COLUMNS = ("model", "epoch", "sampler", "output", "metric", "value")  # calibration/curve.csv's, read
# Names that become parts of file names (figures/fid_<dataset>.png, trials/<trial_id>/preview/<sampler>.png):
# a name with a separator or a leading dot could point outside the run directory.
SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]*")
NAMED_COLUMNS = ("trial_id", "dataset", "model", "sampler", "output")


def ordered(names, canonical) -> list:
    """Known names in canonical order, then the others sorted, each once."""
    names = set(names)
    return [n for n in canonical if n in names] + sorted(names - set(canonical))


@dataclass
class Run:
    path: Path
    manifest: dict
    results: pd.DataFrame
    datasets: list
    models: list
    samplers: list
    values: dict  # (metric, sampler, dataset, model, output) -> {seed: value}, seeds ascending
    directions: dict  # metric -> True when higher is better

    @property
    def config(self) -> dict:
        return self.manifest["config"]

    @property
    def protocol(self) -> dict:
        return self.manifest["protocol"]

    @property
    def grid(self) -> list:
        return self.manifest["grid"]

    def registry(self, kind: str) -> dict:
        """name -> facts of one of the manifest's registries (bench.rundir.registry_facts), in order."""
        return registry_of(self.manifest, kind)

    def _model_facts(self, model: str) -> dict:
        return self.registry("models").get(model, {})

    def label(self, model: str) -> str:
        """A model's display name; a literature name (e.g. rae-l2) takes its model's; else the name."""
        for name, facts in self.registry("models").items():
            if model == name or model in facts.get("literature", ()):
                return facts["label"]
        return model

    @property
    def split_model(self):
        """The model under test: the one whose outputs include x1 and x2 (the SVAE); None without one."""
        return next((m for m in self.models if {"x1", "x2"} <= set(self.outputs(m))), None)

    @property
    def scope_recorded(self) -> bool:
        """Whether the manifest records which models are purely variational (runs before it did not)."""
        return any("purely_variational" in facts for facts in self.registry("models").values())

    def in_claim_scope(self, model: str) -> bool:
        """Whether claim 2 covers the model: purely variational (registry fact); every model where the
        run did not record the fact, as those runs were judged."""
        return self._model_facts(model).get("purely_variational", True)

    def compared_at(self, model: str) -> str:
        """The sampler a model's own paper samples with, where it is compared (default: gmm)."""
        return self._model_facts(model).get("compared_at", "gmm")

    def sampler_title(self, sampler: str) -> str:
        return self.registry("samplers").get(sampler, {}).get("title", sampler)

    def dataset_label(self, dataset: str) -> str:
        """A dataset's display name (Fashion-MNIST, CIFAR-10); else its name."""
        return self.registry("datasets").get(dataset, {}).get("label", dataset)

    def outputs(self, model: str) -> list:
        """The outputs scored for a model: those its registry entry names, then any others found."""
        expected = self._model_facts(model).get("outputs", ["x_hat"])
        seen = {key[4] for key in self.values if key[3] == model}
        return ordered(set(expected) | seen, expected)

    def applies(self, sampler: str, model: str) -> bool:
        """Whether the sampler applies to the model (registry), or the model has figures for it."""
        facts = self.registry("samplers").get(sampler)
        return (facts is not None and (facts["models"] is None or model in facts["models"])) \
            or any(k[1] == sampler and k[3] == model for k in self.values)

    def rows(self, sampler: str) -> list:
        """(model, output) rows of a sampler's table, for the models it applies to."""
        return [(m, o) for m in self.models if self.applies(sampler, m) for o in self.outputs(m)]

    def seed_values(self, metric: str, sampler: str, dataset: str, model: str, output: str) -> dict:
        """{seed: value} of any metric in results.csv (fid, kid, precision, ...)."""
        return self.values.get((metric, sampler, dataset, model, output), {})

    def seed_fids(self, sampler: str, dataset: str, model: str, output: str) -> dict:
        """{seed: value} of the deciding metric: FID, or fd_domain where the run has no FID."""
        return self.seed_values(self.deciding_metric, sampler, dataset, model, output)

    @property
    def measured_metrics(self) -> list:
        """The metrics in results.csv, deciding metric first; an empty run: the deciding one."""
        names = set(self.directions) or {self.deciding_metric}
        return ordered(names, tuple(dict.fromkeys((self.deciding_metric,) + METRIC_ORDER)))

    @property
    def deciding_metric(self) -> str:
        """The figure that claims and the main table use: FID when the run has FID rows (a run scored
        with fd_domain and re-scored with FID decides on FID), else its fd_<network>, else the
        manifest's protocol says which it will be."""
        names = set(self.directions)
        if "fid" in names:
            return "fid"
        frechet = sorted(n for n in names if is_frechet(n))
        if frechet:
            return frechet[0]
        return "fid" if self.protocol.get("fid_backbone", REAL_FID) == REAL_FID else "fd_domain"

    def higher_is_better(self, metric: str) -> bool:
        return self.directions.get(metric, False)

    def asked(self, dataset: str, model: str) -> int:
        """Seeds asked for a (dataset, model): its grid entries, or config.seeds without a grid."""
        n = sum(1 for t in self.grid if t["dataset"] == dataset and t["model"] == model)
        seeds = self.config.get("seeds", 1)
        return n or (len(seeds) if isinstance(seeds, list) else int(seeds))

    def backbones(self) -> dict:
        """dataset -> the network of its deciding metric (results.csv, else the manifest's protocol)."""
        default = self.protocol.get("fid_backbone", REAL_FID)
        rows = self.results[self.results["metric"] == self.deciding_metric]
        found = {}
        for dataset in self.datasets:
            names = sorted(set(rows.loc[rows["dataset"] == dataset, "extractor"]))
            if len(names) > 1:
                raise HarnessError(f"results.csv mixes networks {', '.join(names)} for {dataset}'s "
                                   f"{self.deciding_metric}; score every trial of a dataset with the same one")
            found[dataset] = names[0] if names else default
        return found

    @property
    def is_fid(self) -> bool:
        """True only when the deciding figures are the real FID; fd_domain must never pass for FID."""
        return self.deciding_metric == "fid"

    @property
    def metric(self) -> str:
        return metric_label(self.deciding_metric)

    def trials(self, dataset: str, model: str) -> list:
        """(seed, trial_id) of the grid for a (dataset, model), seeds ascending."""
        return sorted((t["seed"], t["trial_id"]) for t in self.grid
                      if t["dataset"] == dataset and t["model"] == model)

    def finished_ids(self) -> set:
        return set(self.results["trial_id"])

    def status(self, trial_id: str):
        """trials/<id>/status.json as a dict, or None when absent or unreadable."""
        return read_status(self.path / "trials" / trial_id)

    def gmm_counts_tried(self, trial_id: str) -> list:
        """The GMM component counts a trial's held-out rule tried (trials/<id>/sampler_facts.json,
        svae/samplers.py choose_components), ascending; [] when fixed, absent or unreadable."""
        file = self.path / "trials" / trial_id / "sampler_facts.json"
        try:
            tried = json.loads(file.read_text()).get("gmm_heldout_loglik") or {}
            return sorted(int(count) for count in tried)
        except (OSError, ValueError, AttributeError, TypeError):
            return []

    def preview(self, trial_id: str):
        """The images and sigma figures a trial saved for the reports (svae/preview.py: its preview/, or
        for a trial that predates previews its samples/*.npz), or None where it saved neither."""
        return load_preview(self.path / "trials" / trial_id)

    def generated(self, trial_id: str) -> tuple:
        """(sampler, preview) of the first of GENERATORS the trial's preview holds, or (None, None)."""
        preview = self.preview(trial_id)
        sampler = preview.first_of(GENERATORS) if preview is not None else None
        return (sampler, preview) if sampler is not None else (None, None)

    def metrics(self, trial_id: str):
        """trials/<id>/metrics.csv as a DataFrame, or None if absent. Its scores during training
        (<output>_<metric>, bench/trial.py CurveScores) are of the decoder's raw components: x1 and x2
        are named here as the tables name them (orientation.json swaps them where sigma weights the
        second more); without a readable orientation they are dropped, as is a raw mix."""
        table = _read_table(self.path / "trials" / trial_id / "metrics.csv", METRICS_COLUMNS,
                            "delete it or re-run the trial", "it must follow docs/run_directory.md")
        raw = [] if table is None else [c for c in table.columns if c.startswith(("x1_", "x2_", "mix_"))]
        if not raw:
            return table
        orientation = self._orientation(trial_id)
        table = table.drop(columns=[c for c in raw if c.startswith("mix_") or orientation is None])
        swap = {"x1_": "x2_", "x2_": "x1_"} if orientation and orientation["swapped"] else {}
        return table.rename(columns=lambda c: swap[c[:3]] + c[3:] if c[:3] in swap else c)

    def _orientation(self, trial_id: str):
        """trials/<id>/orientation.json (svae/samplers.py orient_components), or None where it is absent,
        unreadable or null (a model without components)."""
        try:
            value = json.loads((self.path / "trials" / trial_id / "orientation.json").read_text())
        except (OSError, ValueError):
            return None
        return value if value and is_orientation(value) else None

    def calibration(self):
        """calibration/curve.csv (bench/curve.py: one seed per model scored every few epochs) as a
        DataFrame, or None where the run directory has none."""
        return _read_table(self.path / "calibration" / "curve.csv", CURVE_COLUMNS,
                           "delete it or run python -m bench.curve again", "run python -m bench.curve again")


def _read_table(file: Path, columns: tuple, unreadable_fix: str, columns_fix: str):
    """A CSV file as a DataFrame with at least `columns`, or None if absent; a HarnessError naming the fix."""
    if not file.exists():
        return None
    try:
        table = pd.read_csv(file)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        raise HarnessError(f"{file} is not a readable CSV ({e}); {unreadable_fix}") from None
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise HarnessError(f"{file} lacks columns {', '.join(missing)}; {columns_fix}")
    return table


def load_run(run_dir) -> Run:
    path = Path(run_dir)
    if not path.is_dir():
        raise HarnessError(f"run directory {path} does not exist; "
                           "pass the folder that python -m bench.run wrote")
    manifest = _load_manifest(path / "manifest.json")
    results = _load_results(path / "results.csv")
    _check_names(path, manifest, results)
    config = manifest["config"]
    values, directions = {}, {}
    for row in results.itertuples(index=False):
        values.setdefault((row.metric, row.sampler, row.dataset, row.model, row.output), {})[row.seed] = row.value
        directions[row.metric] = bool(row.higher_is_better)
    values = {key: dict(sorted(by_seed.items())) for key, by_seed in values.items()}
    grid = manifest["grid"]
    # Tables and figures list names in registry order, names the registry lacks after, sorted.
    return Run(
        path=path, manifest=manifest, results=results, values=values, directions=directions,
        datasets=ordered(list(config["datasets"]) + [t["dataset"] for t in grid]
                         + list(results["dataset"]), registry_of(manifest, "datasets")),
        models=ordered(list(config["models"]) + [t["model"] for t in grid]
                       + list(results["model"]), registry_of(manifest, "models")),
        # Samplers asked in the config or found in the results; an empty run still gets a GMM table.
        samplers=ordered(list(config.get("samplers", [])) + list(results["sampler"]),
                         registry_of(manifest, "samplers")) or ["gmm"],
    )


def is_published(manifest: dict) -> bool:
    """A manifest reports.publish wrote (it says "published": true). Such a folder holds no weights and
    no Ray state, and nothing trains in it, so re-rendering it needs no lock (and leaves no .lock behind)."""
    return manifest.get("published") is True
def _check_names(path: Path, manifest: dict, results: pd.DataFrame) -> None:
    """Every name that becomes part of a file name is a plain name, and the datasets, models and
    samplers of results.csv are the manifest's (its config, grid or registries)."""
    config, grid = manifest["config"], manifest["grid"]
    known = {"dataset": {*config["datasets"], *(t["dataset"] for t in grid), *registry_of(manifest, "datasets")},
             "model": {*config["models"], *(t["model"] for t in grid), *registry_of(manifest, "models")}}
    if registry_of(manifest, "samplers"):
        known["sampler"] = set(registry_of(manifest, "samplers"))
    for column, names in [("trial_id", [t["trial_id"] for t in grid]), *known.items()]:
        for name in names:
            if not isinstance(name, str) or not SAFE_NAME.fullmatch(name):
                raise HarnessError(f"{path / 'manifest.json'} names a {column} {name!r}, not a plain name "
                                   f"(letters, digits, _ . + -); restore the manifest from a copy of the run")
    for index, row in zip(results.index, results[list(NAMED_COLUMNS)].itertuples(index=False)):
        line = index + 2  # the header is line 1
        for column, name in zip(NAMED_COLUMNS, row):
            if not isinstance(name, str) or not SAFE_NAME.fullmatch(name) or name not in known.get(column, {name}):
                raise HarnessError(f"{path / 'results.csv'} line {line}: {column} {name!r} is not one of the "
                                   f"run's (manifest.json); restore results.csv, or rebuild it from the trials' "
                                   f"records: rerun the sweep's command with --resume")


def registry_of(manifest: dict, kind: str) -> dict:
    """name -> facts of manifest["registry"][kind], a list in registry order; {} in older runs."""
    return {facts["name"]: facts for facts in manifest.get("registry", {}).get(kind, [])}


def _load_manifest(file: Path) -> dict:
    if not file.exists():
        raise HarnessError(f"{file.parent} has no manifest.json; "
                           "pass a run directory written by python -m bench.run")
    try:
        manifest = json.loads(file.read_text())
    except (ValueError, UnicodeDecodeError) as e:
        raise HarnessError(f"{file} is not valid JSON ({e}); restore it or re-run the sweep") from None
    missing = [k for k in ("config", "grid", "protocol") if not isinstance(manifest, dict) or k not in manifest]
    missing += [f"config.{k}" for k in ("datasets", "models")
                if "config" not in missing and k not in manifest["config"]]
    if missing:
        raise HarnessError(f"{file} lacks {', '.join(missing)}; "
                           "it must follow docs/run_directory.md (re-run the sweep)")
    for trial in manifest["grid"]:
        if not all(k in trial for k in ("trial_id", "dataset", "model", "seed")):
            raise HarnessError(f"{file} has a grid entry without trial_id, dataset, model and seed: "
                               f"{trial}; re-run the sweep")
    return manifest


def _load_results(file: Path) -> pd.DataFrame:
    # A run whose trials all failed may have no results.csv: every cell is then missing.
    if not file.exists():
        return pd.DataFrame({c: pd.Series(dtype=float if c == "value" else object)
                             for c in REQUIRED_COLUMNS})
    try:
        results = pd.read_csv(file, dtype={"trial_id": str, "dataset": str, "model": str, "sampler": str,
                                           "output": str, "metric": str, "extractor": str, "weights_hash": str})
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError) as e:
        raise HarnessError(f"{file} is not a readable CSV ({e}); restore it or re-run the sweep") from None
    missing = [c for c in REQUIRED_COLUMNS if c not in results.columns]
    if missing:
        raise HarnessError(f"{file} lacks columns {', '.join(missing)}; "
                           "it must follow docs/run_directory.md")
    try:
        results["value"] = pd.to_numeric(results["value"])
        results["seed"] = results["seed"].astype(int)
        results["higher_is_better"] = results["higher_is_better"].map(
            lambda v: {"True": True, "False": False, True: True, False: False}[v])
    except (ValueError, TypeError, KeyError) as e:
        raise HarnessError(f"{file} has a non-numeric value or seed, or a higher_is_better other than "
                           f"True/False ({e}); fix or re-score those rows") from None
    # An unscored row (empty value) is a missing figure, not a zero; for a figure scored twice (a
    # retried trial, a re-score with other weights) the last row wins.
    results = results[results["value"].apply(math.isfinite).astype(bool)]  # a Series: safe when empty
    return results.drop_duplicates(KEY, keep="last")
