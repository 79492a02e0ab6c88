"""report.md, the page a reader opens first, and `render`, which writes every file of the report.

Every file goes through svae/io.py's atomic writes, and nothing rendered carries a timestamp or a
path of the machine, so rendering a finished run again reproduces the same bytes.
"""
import json
from pathlib import Path

from svae.io import atomic_write_bytes, atomic_write_text

from reports.claims import CONFIDENCE, check_claims
from reports.figures import render_figures
from reports.rundir import Run, load_run
from reports.tables import (MISSING, SAMPLER_TITLES, build_tables, fd_domain_warning,
                            markdown_table, to_csv, to_latex, to_markdown)
from reports.validate import validate_results


def render(run_dir: str | Path) -> None:
    """Write table.md, table.tex, table.csv, claims.md, figures/ and report.md into run_dir.

    Damaged results (results.csv disagreeing with the trials' records) are refused before any
    file is written, so the reports already there stay as they were."""
    validate_results(run_dir)
    run = load_run(run_dir)
    tables = build_tables(run)
    claims, verdicts = check_claims(run)
    figures = render_figures(run, lambda name, data: atomic_write_bytes(run.path / name, data))
    atomic_write_text(run.path / "table.md", to_markdown(run, tables))
    atomic_write_text(run.path / "table.tex", to_latex(run, tables))
    atomic_write_text(run.path / "table.csv", to_csv(run, tables))
    atomic_write_text(run.path / "claims.md", claims)
    atomic_write_text(run.path / "report.md", report_markdown(run, tables, verdicts, figures))


def report_markdown(run: Run, tables: list, verdicts: list, figures: list) -> str:
    m = run.manifest
    lines = [f"# Run report: {m.get('name', run.path.name)}", ""]
    if not run.is_fid:
        lines += [fd_domain_warning(), ""]
    lines += ["## What was run", ""]
    lines += [f"- {key}: {_value(m[key])}" for key in
              ("created", "config", "protocol", "versions", "git_commit", "host") if key in m]
    lines += ["", "## Main table", ""] + markdown_table(tables[0], heading="###")
    lines += ["", "All samplers' tables: [table.md](table.md), [table.tex](table.tex), "
              "[table.csv](table.csv).", "", *_verdict_section(verdicts), "", "## Figures", ""]
    lines += [f"- [{Path(f).stem}]({f}) ([pdf]({Path(f).with_suffix('.pdf')}))"
              f"\n\n  ![{Path(f).stem}]({f})" for f in figures] or ["No figure: nothing finished."]
    lines += ["", *_missing_section(run, tables), "", "## How to reproduce", ""]
    command = run.config.get("command")
    lines += [f"Train and measure again:\n\n```\n{command}\n```" if command else
              "The manifest stores no command (config.command): run `python -m bench.run` with "
              "the config above.",
              "", "Re-render these reports from this run directory alone, without retraining:", "",
              f"```\npython -m reports path/to/{run.path.name}\n```", ""]
    return "\n".join(lines)


def _value(value) -> str:
    return value if isinstance(value, str) else f"`{json.dumps(value, ensure_ascii=False)}`"


def _verdict_section(verdicts: list) -> list:
    claims = list(dict.fromkeys(v.claim for v in verdicts))
    by_key = {(v.dataset, v.claim): v.verdict for v in verdicts}
    lines = ["## Claim verdicts", "", "| dataset | " + " | ".join(claims) + " |",
             "|---|" + "---|" * len(claims)]
    lines += [f"| {d} | " + " | ".join(by_key[d, c] for c in claims) + " |"
              for d in dict.fromkeys(v.dataset for v in verdicts)]
    return lines + ["", f"Figures, intervals and the rules that decided: [claims.md](claims.md). "
                    f"{CONFIDENCE}"]


def _missing_section(run: Run, tables: list) -> list:
    lines = ["## Missing cells", "", "Trials of the grid without results:", ""]
    finished = run.finished_ids()
    unfinished = [t["trial_id"] for t in run.grid if t["trial_id"] not in finished]
    if unfinished:
        lines += ["| trial | status | error |", "|---|---|---|"]
        for trial_id in unfinished:
            status = run.status(trial_id) or {"status": "no status.json (never started?)"}
            error = (status.get("error") or "").strip().splitlines()
            lines.append(f"| {trial_id} | {status.get('status')} | "
                         f"{error[-1].replace('|', '/') if error else ''} |")
    else:
        lines.append("None: every trial of the grid finished.")
    cells = [(t.sampler, label, d) for t in tables for label, row in t.measured
             for d, cell in zip(t.datasets, row) if cell.n == 0]
    lines += ["", f"Table cells with no finished seed (shown as {MISSING}):", ""]
    if cells:
        lines += ["| sampler | row | dataset |", "|---|---|---|"]
        lines += [f"| {SAMPLER_TITLES.get(s, s)} | {label} | {d} |" for s, label, d in cells]
    else:
        lines.append("None.")
    return lines
