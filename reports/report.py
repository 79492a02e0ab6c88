"""report.md, the page a reader opens first, and `render`, which writes every file of the report.

report.md opens with the answer (the headline table: each model at its own sampler, best first, and
the claim verdicts with their reasons), then a glossary, links to every table and figure, what is
missing, how to reproduce, and the provenance in an appendix of key/value tables.

Every file goes through svae/io.py's atomic writes, and nothing rendered carries a timestamp, a host
or user name, or a path of the machine (`private`), so rendering a finished run again reproduces the
same bytes wherever the run directory lies.
"""
import re
from pathlib import Path

from svae.io import atomic_write_bytes, atomic_write_text

from reports.budget import budget_notes
from reports.claims import CONFIDENCE, HIGH_FREQUENCY, SYNTACTIC_SHARE, check_claims, component_rule
from reports.figures import render_figures
from reports.plotting import caption
from reports.headline import headline
from reports.memorisation import memorisation_section
from reports.rundir import Run, load_run, ordered
from svae.contract import METRIC_ORDER, metric_label, network_words
from reports.tables import MISSING, arrow, build_tables, fd_domain_warning, to_csv, to_latex, to_markdown
from reports.validate import validate_results

RUN_DIR = "<run_dir>"  # stands for the run directory wherever it lies
ELSEWHERE = "<path>"  # an absolute path outside the run directory: a machine's, never rendered
# An absolute path: "/" or "~/" or a drive letter, at the start of a line or word, or after "=", a quote,
# a backtick or "(".
ABSOLUTE_PATH = re.compile(r"""(?:^|(?<=[\s='"`(]))(?:~?/|[A-Za-z]:[\\/])[^\s'"`(),;|]+""", re.M)
HOST_KEYS = ("cpus", "cpu_model", "gpus", "platform")  # of the manifest's host: never its hostname or user


def render(run_dir: str | Path) -> None:
    """Write table.md, table.tex, table.csv, claims.md, figures/ and report.md into run_dir.

    Damaged results (results.csv disagreeing with the trials' records) are refused before any
    file is written, so the reports already there stay as they were."""
    validate_results(run_dir)
    run = load_run(run_dir)
    tables = build_tables(run)
    claims, verdicts = check_claims(run)
    figures = render_figures(run, lambda name, data: atomic_write_bytes(run.path / name, data))
    for name, text in (("table.md", to_markdown(run, tables)), ("table.tex", to_latex(run, tables)),
                       ("table.csv", to_csv(run, tables)), ("claims.md", claims),
                       ("report.md", report_markdown(run, tables, verdicts, figures))):
        atomic_write_text(run.path / name, private(run, text))


def private(run: Run, text: str) -> str:
    """text with every absolute path replaced: inside the run directory by <run_dir>/..., else <path>.

    The run directory is recognised where it lies now and by its name (the manifest's) anywhere, so
    a command recorded where the run was made still renders the same after the directory moved."""
    text = text.replace(str(run.path.resolve()), RUN_DIR)
    name = run.manifest.get("name", run.path.name)

    def relative(match) -> str:
        parts = re.split(r"[\\/]", match.group(0))
        if name in parts:
            rest = parts[len(parts) - parts[::-1].index(name):]
            return "/".join([RUN_DIR, *rest]).rstrip("/")
        return ELSEWHERE
    return ABSOLUTE_PATH.sub(relative, text)


def report_markdown(run: Run, tables: list, verdicts: list, figures: list) -> str:
    m = run.manifest
    lines = [f"# Run report: {m.get('name', run.path.name)}", ""]
    if not run.is_fid:
        lines += [fd_domain_warning(), ""]
    lines += _headline_section(run, figures) + [""] + memorisation_section(run) + [""]
    lines += [f"{line}\n" for line in preview_figure_lines(figures)]
    lines += _verdict_section(run, verdicts, figures) + [""]
    lines += _glossary(run) + [""] + _networks_section(run) + [""]
    lines += _search_section(m.get("search"), m.get("wall_time_s"), m.get("sessions_unmeasured", 0))
    lines += ["## All tables and figures", "", "Every sampler's and metric's table: [table.md](table.md), "
              "[table.tex](table.tex) (LaTeX, booktabs), [table.csv](table.csv) (numbers for scripts).", ""]
    lines += [f"- [{Path(f).stem}]({f}) ([pdf]({Path(f).with_suffix('.pdf')})): {caption(f)}"
              f"\n\n  ![{Path(f).stem}]({f})" for f in figures] or ["No figure: nothing finished."]
    lines += ["", *_missing_section(run, tables), "", "## How to reproduce", ""]
    command = run.config.get("command")
    lines += [f"Train and measure again ({RUN_DIR} is this run directory):\n\n```\n{command}\n```" if command else
              "The manifest stores no command (config.command): run `python -m bench.run` with "
              "the config in the appendix.",
              "", "Re-render these reports from this run directory alone, without retraining:", "",
              f"```\npython -m reports {RUN_DIR}\n```", "",
              "Every known difference from the reference codes (the SVAE authors', Dai & Wipf's), with "
              f"its reason and expected effect: `docs/fidelity.md` in svae-bench at commit "
              f"{m.get('git_commit', 'unrecorded')}.", ""]
    return "\n".join(lines + _appendix(run))


def _headline_section(run: Run, figures: list) -> list:
    metric = f"{run.metric} {arrow(run, run.deciding_metric)}"
    better = "higher" if run.higher_is_better(run.deciding_metric) else "lower"
    lines = [f"## Headline: {metric}, each model at its own sampler", "",
             f"Best first ({better} is better); mean ± sample std over seeds (n = finished seeds). "
             f"\"vs best\" is the difference from the best mean. The split model's components are "
             f"listed beside its x_hat; claims.md says whether the differences are significant.", "",
             f"| dataset | rank | model | sampler | {metric} | vs best |", "|---|---:|---|---|---:|---:|"]
    for dataset in run.datasets:
        entries = headline(run, dataset)
        best = entries[0].mean if entries and entries[0].n else None
        for rank, e in enumerate(entries, 1):
            value = f"**{e.text()}**" if e.n and e.mean == best else e.text()
            versus = MISSING if not e.n else "best" if e.mean == best else f"{e.mean - best:+.2f}"
            lines.append(f"| {run.dataset_label(dataset)} | {rank if e.n else MISSING} | {e.label} | "
                         f"{e.sampler} | {value} | {versus} |")
    if "figures/headline.png" in figures:
        lines += ["", "![headline](figures/headline.png)"]
    return lines


PREVIEW_FIGURES = (("nearest", "each model's samples beside their nearest training images"),
                   ("interpolation", "interpolations between two test images"))  # drawn only where trials recorded them


def preview_figure_lines(figures: list) -> list:
    """Per figure that only trials' previews record (PREVIEW_FIGURES): where to see it, or why it is absent."""
    lines = []
    for kind, what in PREVIEW_FIGURES:
        found = [f for f in figures if f.startswith(f"figures/{kind}_")]
        lines.append(what[0].upper() + what[1:] + ": " + ", ".join(
            f"[{f.removeprefix('figures/').removesuffix('.png')}]({f})" for f in found) + "." if found else
            f"No figure of {what}: this run's trials predate that record (trials/<id>/preview/index.json); "
            "only a new run draws it.")
    return lines


def _verdict_section(run: Run, verdicts: list, figures: list) -> list:
    suffixes, scale = budget_notes(run, verdicts)
    lines = ["## Claim verdicts", "", *[f"{line}\n" for line in scale],
             "| dataset | claim | verdict | why |", "|---|---|---|---|"]
    lines += [f"| {run.dataset_label(v.dataset)} | {v.claim} | **{v.verdict}**{suffixes.get((v.dataset, v.claim), '')} "
              f"| {v.why.replace('|', '/')} |" for v in verdicts]
    forest = ", [the forest plot](figures/forest.png)" if "figures/forest.png" in figures else ""
    return lines + ["", f"Figures, intervals and the rules that decided: [claims.md](claims.md){forest}. {CONFIDENCE}"]


def _glossary(run: Run) -> list:
    lines = ["## Glossary", "",
             "- **x_hat**: a model's generated image. For the split model (SVAE) it is "
             "x_hat = sigma * x1 + (1 - sigma) * x2, the image it is trained to reconstruct.",
             f"- **x1, x2**: the split model's two decoded components. {component_rule(run)}",
             "- **sigma**: the split model's per-pixel map in [0, 1] that weights x1 against x2. Its "
             f"high-frequency share (the part of its spectral energy above {HIGH_FREQUENCY} cycles per "
             f"pixel) names the split: syntactic at {SYNTACTIC_SHARE} or more, semantic below.",
             "- **mix**: x1's images for the first half of the samples and x2's for the rest, scored as one set.",
             "- **fd_domain**: the Frechet distance on the features of an offline classifier trained on "
             "the dataset itself, scored beside FID, or in its place where the Inception weights are not "
             "available. It is NOT FID and cannot be compared with published FIDs.",
             "- **samplers** (how the latents of generated images are drawn):"]
    for name, facts in ((n, f) for n, f in run.registry("samplers").items() if n in run.samplers):  # ones with rows
        description = facts.get("description")
        lines.append(f"  - `{name}`: {facts.get('title', name)}" + (f"; {description}" if description else ""))
    return lines


def _networks_section(run: Run) -> list:
    """Which network and weights source produced each figure, from results.csv's extractor and weights_hash."""
    results = run.results
    if "weights_hash" not in results or results.empty:
        return []
    lines = ["## Networks and weights", "", "Every figure names the network that measured it (results.csv: "
             "extractor, extractor_id, weights_hash):", "", "| metrics | network and weights source | samplers |",
             "|---|---|---|"]
    hashes = results["weights_hash"].fillna("unrecorded").astype(str)
    for (extractor, weights), rows in results.groupby([results["extractor"], hashes], sort=True):
        metrics = ", ".join(metric_label(m) for m in ordered(set(rows["metric"]), METRIC_ORDER))
        samplers = ", ".join(s for s in run.samplers if s in set(rows["sampler"]))
        lines.append(f"| {metrics} | {network_words(extractor, weights)} | {samplers} |")
    return lines


def _appendix(run: Run) -> list:
    m = run.manifest
    sections = [("Run", {k: m[k] for k in ("name", "run_id", "created", "git_commit", "wall_time_s",
                                           "sessions_unmeasured", "rescore_wall_s", "rescores_unmeasured")
                             if k in m}),
                ("Config", run.config), ("Protocol", run.protocol), ("Versions", m.get("versions", {})),
                ("Machine", {k: v for k, v in m.get("host", {}).items() if k in HOST_KEYS})]
    lines = ["## Appendix: provenance", ""]
    for title, facts in sections:
        rows = _flatten(facts)
        if rows:
            lines += [f"### {title}", "", "| key | value |", "|---|---|"]
            lines += [f"| `{key}` | {_cell(value)} |" for key, value in rows] + [""]
    return lines + _data_files(m.get("data"))


def _flatten(facts: dict, prefix: str = "") -> list:
    """(dotted key, value) of nested dicts, in order; lists of plain values stay one value."""
    rows = []
    for key, value in facts.items():
        if isinstance(value, dict) and value:
            rows += _flatten(value, f"{prefix}{key}.")
        else:
            rows.append((f"{prefix}{key}", value))
    return rows


def _cell(value) -> str:
    """A value as a code span: shown verbatim (no Markdown emphasis, no <...> eaten as HTML)."""
    if isinstance(value, list):
        value = ", ".join(str(v) for v in value) or "none"
    text = "none" if value is None or value == {} else str(value)
    return "`" + text.replace("|", "/").replace("`", "'") + "`"


def _data_files(data) -> list:
    """The files the datasets were read from (svae.data.provenance), relative to their root."""
    rows = [(dataset, split, r) for dataset, splits in (data or {}).items() if isinstance(splits, dict)
            for split, records in splits.items() for r in records]
    if not rows:
        return []
    lines = ["### Data files", "", "| dataset | split | root | path | bytes | sha256 |", "|---|---|---|---|---:|---|"]
    lines += [f"| {d} | {split} | {r.get('root')} | `{r.get('path')}` | {r.get('size')} | `{r.get('sha256')}` |"
              for d, split, r in rows]
    return lines + [""]


def _search_section(search, wall_time_s=None, unmeasured=0) -> list:
    """The search (bench/search.py): what was tuned, on what, and what was chosen."""
    if not search or not search.get("table"):
        return []
    if "max_widening" in search:
        return _knob_search_section(search, wall_time_s, unmeasured)
    lines = ["## Baseline search", ""]  # a run from before every model was searched alike
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
        scores = ", ".join(f"{s['value']:g}: {'diverged' if s['score'] is None else format(s['score'], '.2f')}"
                           for s in r["scores"])
        at_edge = r["chosen"] in (r["grid"][0], r["grid"][-1])
        edge = " (at the grid's edge: the best value may lie beyond it)" if at_edge else ""
        lines.append(f"| {r['dataset']} | {r['model']} | {r['knob']} | {scores} ({r['metric']}, "
                     f"{r['epochs']} epochs) | {r['chosen']:g}{edge} |")
    return lines + [""]


def _knob_search_section(search: dict, wall_time_s, unmeasured: int) -> list:
    lines = ["## Search: every model's knob tuned alike", ""]
    untuned = "".join(f" {m}: not searched ({why})." for m, why in search.get("not_searched", {}).items())
    if not search.get("enabled"):
        knobs = ", ".join(f"{m} ({' and '.join(t['knob'])})" for m, t in search["table"].items())
        return lines + [f"Not run: {knobs} kept the preset's (as published) value(s).{untuned}", ""]
    factors = ", ".join(f"{f:g}" for f in next(iter(search["table"].values()))["factors"])
    share = f" It took {search['wall_s']:.0f} s" + (f", {search['wall_s'] / wall_time_s:.0%} of the study's "
                                                   f"{wall_time_s:.0f} s." if wall_time_s and not unmeasured else ".")
    if unmeasured:  # bench/rundir.py: a session killed outright counts only up to its last finished trial
        share += (f" {unmeasured} session(s) of the study ended without recording a wall time, so the study's "
                  f"recorded {wall_time_s or 0:.0f} s (manifest.json wall_time_s) leaves part of it out.")
    lines += [f"Each model's regularisation knob was searched the same way before the seeded runs: the factors "
              f"{factors} times its as-published value (the preset's), {len(search['seeds'])} seeds per "
              f"candidate, each trained for {search['epoch_fraction']:g} of the study's epochs (at least 1) on "
              "the training images less a validation split carved from them, sampled with the GMM and scored "
              "on the validation images (never the FID reference split); a factor's score is the mean over its "
              f"seeds, the lowest wins. Where it sat at an edge the grid widened by a factor of 2, at most "
              f"{search['max_widening']} times.{share}{untuned} Factor 1 is the as-published row; the as-published "
              "study at the full budget is this config run again with `--no-search`, and `python -m "
              "reports.as_published` shows the two side by side.", "",
              "| dataset | model | knob (as published) | factor: score | chosen | why it stopped |",
              "|---|---|---|---|---|---|"]
    for r in search["results"]:
        scores = ", ".join(f"{s['factor']:g}: {'diverged' if s['score'] is None else format(s['score'], '.2f')}"
                           for s in r["scores"])
        published = ", ".join(f"{k} = {v:g}" for k, v in r["published"].items())
        chosen = ", ".join(f"{k} = {v:g}" for k, v in r["chosen"].items())
        lines.append(f"| {r['dataset']} | {r['model']} | {published} | {scores} ({r['metric']}, {r['epochs']} "
                     f"epochs) | x{r['chosen_factor']:g}: {chosen} | {r['stopped']} |")
    return lines + [""]


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
