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
from reports.tables import (MISSING, build_tables, fd_domain_warning, markdown_table, to_csv, to_latex,
                            to_markdown)
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
    lines += ["", "Every known difference from the reference codes (the SVAE authors', Dai & Wipf's), with "
              f"its reason and expected effect: `docs/fidelity.md` in svae-bench at commit "
              f"{m.get('git_commit', 'unrecorded')}.", ""] + _search_section(m.get("search"))
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


def _search_section(search) -> list:
    """The baseline search (bench/search.py): what was tuned, on what, and what was chosen."""
    if not search or not search.get("table"):
        return []
    lines = ["## Baseline search", ""]
    if not search.get("enabled"):
        knobs = ", ".join(f"{m} ({t['knob']})" for m, t in search["table"].items())
        return lines + [f"Not run: {knobs} kept the preset's value(s).", ""]
    lines += [f"Each searched baseline's knob was tuned before the seeded runs: one candidate per grid "
              f"value, trained for {search['epoch_fraction']:g} of the preset's epochs on the training "
              "images minus a validation split carved from them, sampled with its own sampler and "
              "scored on the validation images (never the FID reference split); the lowest score "
              "was chosen for every seed.", "",
              "| dataset | model | knob | grid: score | chosen |", "|---|---|---|---|---:|"]
    for r in search["results"]:
        scores = ", ".join(f"{s['value']:g}: {'failed' if s['score'] is None else format(s['score'], '.2f')}"
                           for s in r["scores"])
        at_edge = r["chosen"] in (r["grid"][0], r["grid"][-1])
        edge = " (at the grid's edge: the best value may lie beyond it)" if at_edge else ""
        lines.append(f"| {r['dataset']} | {r['model']} | {r['knob']} | {scores} ({r['metric']}, "
                     f"{r['epochs']} epochs) | {r['chosen']:g}{edge} |")
    return lines + [""]


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
    cells = [(t.title, label, d) for t in tables if t.metric == run.deciding_metric for label, row in t.measured
             for d, cell in zip(t.datasets, row) if cell.n == 0]
    lines += ["", f"Table cells with no finished seed (shown as {MISSING}):", ""]
    if cells:
        lines += ["| sampler | row | dataset |", "|---|---|---|"]
        lines += [f"| {title} | {label} | {d} |" for title, label, d in cells]
    else:
        lines.append("None.")
    return lines
