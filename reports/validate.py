"""Refuse damaged results before anything is rendered from them.

results.csv is a copy: each finished trial keeps its own record of its rows (trials/<id>/rows.json,
next to status.json). `validate_results` checks the copy against those records (every finished
trial's rows present, the same in every column; no row twice; no row of a trial that did not finish)
and every value against its metric's valid range. Any mismatch is a HarnessError, raised before a
report file is touched.

Two small tables drive it, so a new format or metric changes data, not code:
- svae/contract.py metric_range: metric name -> closed interval of valid values;
- metric_rows: reads (row key, metric, value, row) out of a results table (long format: one figure a row).
"""
import json
import math
from pathlib import Path

import pandas as pd

from svae.contract import metric_range
from svae.errors import HarnessError

# A Frechet distance is >= 0 in exact arithmetic; float64 eigenvalues leave it a hair below zero
# for identical sets. Anything further below is damage, not rounding.
ROUNDING = 1e-6
# one figure of one trial: a re-score adds figures of other extractors or sample counts beside the first
KEY_COLUMNS = ("trial_id", "sampler", "output", "extractor_id", "n_samples")
ROW_COLUMNS = KEY_COLUMNS + ("metric", "value")  # what every row of a trial's record names


def metric_rows(table: pd.DataFrame):
    """(key, metric, value, row) of every figure in a results table; key = the KEY_COLUMNS values."""
    for record in table.to_dict("records"):
        yield (tuple(str(record.get(c)) for c in KEY_COLUMNS), str(record.get("metric")), _number(record.get("value")),
               record)


def _number(value) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _where(key, metric) -> str:
    return f"{metric} of {'/'.join(key)}"


def trial_rows(folder: Path) -> list:
    """A finished trial's record of its figures (rows.json): a list of rows, each naming its figure."""
    file = folder / "rows.json"
    try:
        rows = json.loads(file.read_text())
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            raise ValueError("not a list of rows")
        lacking = next((sorted(set(ROW_COLUMNS) - r.keys()) for r in rows if not r.keys() >= set(ROW_COLUMNS)), [])
        if lacking:
            raise ValueError(f"a row lacks {', '.join(lacking)}")
    except (OSError, ValueError) as e:
        raise HarnessError(f"trial {folder.name} is finished but its record {file} is unreadable "
                           f"({type(e).__name__}: {e}); restore it, or delete {folder} and resume the sweep to "
                           f"rerun the trial") from None
    return rows


def validate_results(run_dir) -> None:
    """HarnessError (one line, with the fix) unless results.csv agrees with the finished trials' records."""
    run_dir = Path(run_dir)
    file = run_dir / "results.csv"
    fix = f"restore {file} from a copy, or rebuild it from the trials' records: rerun the sweep's " \
          f"command (manifest.json config.command) with --resume"
    try:
        grid = json.loads((run_dir / "manifest.json").read_text())["grid"]
        trial_ids = [t["trial_id"] for t in grid]
    except (OSError, ValueError, KeyError, TypeError):
        return  # load_run names what is wrong with the manifest
    expected = {}
    for trial_id in trial_ids:
        folder = run_dir / "trials" / trial_id
        try:
            finished = json.loads((folder / "status.json").read_text()).get("status") == "finished"
        except (OSError, ValueError, AttributeError):
            continue  # no readable status: the trial has no results, and reports list it as missing
        if not finished:
            continue
        rows = trial_rows(folder)
        expected.update({(key, metric): (value, row) for key, metric, value, row in metric_rows(pd.DataFrame(rows))})
    if not file.exists() or file.stat().st_size == 0:
        if expected:
            raise HarnessError(f"{file} is {'empty' if file.exists() else 'missing'} but "
                               f"{len({k[0][0] for k in expected})} trials finished; {fix}")
        return
    try:
        table = pd.read_csv(file, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        raise HarnessError(f"{file} is not a readable CSV ({' '.join(str(e).split())}); {fix}") from None
    missing_columns = [c for c in KEY_COLUMNS + ("metric", "value") if c not in table.columns]
    if missing_columns:
        raise HarnessError(f"{file} lacks columns {', '.join(missing_columns)}; "
                           f"it must follow docs/run_directory.md")
    finished_trials = {key[0] for key, _ in expected}
    seen = {}
    for line, (key, metric, value, row) in enumerate(metric_rows(table), start=2):
        where = _where(key, metric)
        if (key, metric) in seen:
            raise HarnessError(f"{file} holds {where} twice (lines {seen[key, metric]} and {line}); {fix}")
        seen[key, metric] = line
        low, high = metric_range(metric)
        if math.isfinite(value) and not low - ROUNDING <= value <= high + ROUNDING:
            raise HarnessError(f"{file} line {line}: {where} is {value:g}, outside its range "
                               f"[{low:g}, {high:g}]; {fix}")
        if key[0] not in finished_trials:
            raise HarnessError(f"{file} line {line} holds {where}, but trial {key[0]} has no finished record "
                               f"in {run_dir / 'trials'}; {fix}")
        record, recorded_row = expected.get((key, metric), (None, {}))
        if record is None or not _same(value, record):
            raise HarnessError(f"{file} line {line}: {where} is {value:g}, but the trial's record says "
                               f"{'nothing' if record is None else f'{record:g}'}; {fix}")
        changed = [c for c in recorded_row if c != "value" and not _same_cell(row.get(c, ""), recorded_row[c])]
        if changed:  # an edited model, seed or dataset column would put the figure under another name
            column = changed[0]
            raise HarnessError(f"{file} line {line}: {where} has {column} {row.get(column, '')!r}, but the trial's "
                               f"record says {recorded_row[column]!r}; {fix}")
    lost = [k for k in expected if k not in seen]
    if lost:
        (key, metric), n = lost[0], len(lost)
        raise HarnessError(f"{file} lacks {n} result{'s' if n > 1 else ''} of finished trials "
                           f"(first: {_where(key, metric)}); {fix}")


def _same_cell(text: str, recorded) -> bool:
    """Whether a results.csv cell (text) is the record's value as pandas writes it: None and NaN as an
    empty cell, numbers to within rounding, anything else as its str()."""
    if recorded is None or (isinstance(recorded, float) and math.isnan(recorded)):
        return text == ""
    if isinstance(recorded, (int, float)) and not isinstance(recorded, bool):
        return _same(_number(text), float(recorded))
    return text == str(recorded)


def _same(a: float, b: float) -> bool:
    """Equal as written by pandas (shortest repr round-trips), or both not a number."""
    return (math.isnan(a) and math.isnan(b)) or math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-12)
