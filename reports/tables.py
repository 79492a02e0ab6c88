"""The paper-style tables: one per metric and sampler, a column per dataset, a row per model and SVAE
output. The deciding metric's tables (FID, or fd_domain) come first; an arrow says which way is better.

Each table is built once as data (`Table`) and then written three ways (Markdown, LaTeX, CSV), so
the formats cannot disagree. A caption says what the figures are in a sentence or two; the protocol
follows in a footnote line. Published figures come from reports/literature_fid.csv as "reported"
rows kept apart from the measured ones, and only where their protocol is ours (reports/literature.py;
the others are listed under the table with how they differ): they never enter a mean or the
best-cell marks, and table.csv (for scripts: one numeric row per measured cell) leaves them out.
"""
import csv
import io
import re
from dataclasses import dataclass

from reports.literature import UNKNOWN, differences, published
from reports.rundir import Run, metric_label
from reports.stats import summarize
from svae.contract import is_kernel, network_words

MISSING = "—"


@dataclass(frozen=True)
class Cell:
    mean: float = None
    std: float = None
    n: int = 0
    asked: int = 0
    best: bool = False

    def text(self) -> str:
        if self.n == 0:
            return MISSING
        text = f"{self.mean:.2f}" if self.std is None else f"{self.mean:.2f} ± {self.std:.2f}"
        return text + (f" (n={self.n})" if self.n < self.asked else "")


@dataclass(frozen=True)
class Table:
    sampler: str
    metric: str
    title: str  # the sampler's title
    heading: str  # the title, with the metric and its direction for any but the deciding metric
    caption: str
    datasets: list
    dataset_labels: list  # display names, the column headings
    measured: list  # (label, [Cell per dataset])
    keys: list  # (model, output) of each measured row
    reported: list  # (label, [str per dataset])
    footnotes: list


def row_label(run: Run, model: str, output: str) -> str:
    """The model's label, followed by the output's name for a model with several outputs."""
    return run.label(model) if run.outputs(model) == ["x_hat"] else f"{run.label(model)} {output}"


def arrow(run: Run, metric: str) -> str:
    return "↑" if run.higher_is_better(metric) else "↓"


def build_tables(run: Run) -> list:
    """The deciding metric's table for every sampler, then every other metric's; only the samplers a
    metric was scored at (Inception scores only the claims' outputs in the cpu preset), unless nothing was."""
    scored = set(zip(run.results["metric"], run.results["sampler"]))
    return [_build(run, sampler, metric) for metric in run.measured_metrics for sampler in run.samplers
            if not scored or (metric, sampler) in scored]


def _build(run: Run, sampler: str, metric: str) -> Table:
    measured, keys = [], run.rows(sampler)
    for model, output in keys:
        cells = []
        for dataset in run.datasets:
            mean, std, n = summarize(run.seed_values(metric, sampler, dataset, model, output).values())
            cells.append(Cell(mean, std, n, run.asked(dataset, model)))
        measured.append((row_label(run, model, output), cells))
    # Mark the best measured mean of each column, in the metric's direction (every tie is marked).
    best = max if run.higher_is_better(metric) else min
    for j in range(len(run.datasets)):
        means = [cells[j].mean for _, cells in measured if cells[j].n]
        for _, cells in measured:
            if cells[j].n and cells[j].mean == best(means):
                cells[j] = Cell(cells[j].mean, cells[j].std, cells[j].n, cells[j].asked, True)
    reported, notes = _reported_rows(run, sampler) if metric == "fid" else ([], [])
    title = run.sampler_title(sampler)
    heading = title if metric == run.deciding_metric else f"{metric_label(metric)} {arrow(run, metric)}: {title}"
    footnotes = [protocol_note(run, sampler, metric)]
    footnotes += _footnotes(run) if metric == run.deciding_metric else []
    footnotes += [KERNEL_SCALE] if is_kernel(metric) else []
    return Table(sampler, metric, title, heading, caption(run, sampler, metric), run.datasets,
                 [run.dataset_label(d) for d in run.datasets], measured, keys,
                 reported, footnotes + notes)


KERNEL_SCALE = ("The kernel distance is the unbiased squared MMD of the features with the cubic polynomial "
                "kernel, unscaled: papers that report KID on Inception usually multiply it by 1000 or 100. Its "
                "size depends on the network's feature scale: compare it within this table only.")


def networks_text(run: Run, metric: str) -> str:
    """The networks and weights sources of a metric's figures in words (results.csv's extractor and
    weights_hash; an empty run: the manifest's protocol)."""
    rows = run.results[run.results["metric"] == metric]
    hashes = (rows["weights_hash"].fillna("unrecorded").astype(str) if "weights_hash" in rows
              else ["unrecorded"] * len(rows))
    pairs = sorted(set(zip(rows["extractor"], hashes)))
    pairs = pairs or [(network, run.protocol.get("weights_hash", "unrecorded"))
                      for network in sorted(set(run.backbones().values()))]
    return "; ".join(network_words(e, h) for e, h in pairs)


def _metric_text(run: Run, metric: str) -> str:
    """What the figures are: the metric, its network and weights source (as results.csv records them)."""
    networks = networks_text(run, metric)
    if metric == "fid":
        return f"FID on {networks}"
    if metric.startswith("fd_"):
        return (f"{metric} on {networks}, NOT FID: an offline stand-in, not comparable with any published FID")
    rows = run.results[run.results["metric"] == metric]
    settings = ", ".join(sorted(set(rows["settings"].dropna().astype(str)))) if "settings" in rows else ""
    return f"{metric_label(metric)} on {networks} ({settings})"


def caption(run: Run, sampler: str, metric: str) -> str:
    """One or two sentences: what the figures are and how to read them."""
    direction = "higher" if run.higher_is_better(metric) else "lower"
    name = metric_label(metric) + ("" if metric == "fid" or not metric.startswith("fd_") else " (NOT FID)")
    return (f"{name} of each model and output with the {run.sampler_title(sampler)}, mean ± sample std over "
            f"seeds ({direction} is better, {arrow(run, metric)}); bold marks the best measured figure of "
            f"each dataset; (n=k): only k of the seeds asked finished; {MISSING}: none finished.")


def protocol_note(run: Run, sampler: str, metric: str) -> str:
    """The footnote line that says how the figures were measured."""
    p = run.protocol
    settings = p.get("samplers", {}).get(sampler, {})
    settings = f"; sampler settings: {', '.join(f'{k}={v}' for k, v in settings.items())}" if settings else ""
    return (f"Protocol: {_metric_text(run, metric)}; {p.get('n_samples', '?')} generated images against "
            f"{p.get('reference_n', '?')} images of the {p.get('reference_split', '?')} split; "
            f"quantize={p.get('quantize', '?')}; resize: {p.get('resize', '?')}{settings}.")


def _reported_rows(run: Run, sampler: str) -> tuple:
    """(rows beside ours, notes) of the published figures for this sampler (GMM also takes those whose
    sampler is unstated): a figure sits beside ours only where its protocol matches (reports/literature.py);
    the others are listed in the notes with how they differ."""
    rows, apart, notes = {}, [], {}
    for e in published():
        if e["dataset"] not in run.datasets or not (e["sampler"] == sampler or (sampler == "gmm" and
                                                                              e["sampler"] == UNKNOWN)):
            continue
        label = run.label(e["model"]) + ("" if e["output"] in ("x_hat", UNKNOWN) else f" {e['output']}")
        label += f" [{e['source']}]"
        value = e["fid"] + (f" ± {e['fid_std']}" if e["fid_std"] else "")
        ours = run.results[(run.results["metric"] == "fid") & (run.results["dataset"] == e["dataset"])
                           & (run.results["sampler"] == sampler)]
        outputs = sorted(set(ours["output"])) or sorted({output for _, output in run.rows(sampler)})
        ns = set(ours["n_samples"]) or {n for n in [run.protocol.get("n_samples")] if n is not None}
        differ = differences(e, e["dataset"], sampler, outputs, ns)
        if differ:
            apart.append(f"{label} {run.dataset_label(e['dataset'])} {value} ({'; '.join(differ)})")
        else:
            rows.setdefault(label, [""] * len(run.datasets))[run.datasets.index(e["dataset"])] = value
        if e["note"]:
            notes.setdefault(label, {})[f"{e['dataset']}: {e['note']}"] = None
    notes = [f"{label}: {'; '.join(n)}." for label, n in notes.items()]
    if apart:
        notes.insert(0, "Published figures NOT beside ours, because their protocol differs: " + ", ".join(apart) + ".")
    return list(rows.items()), notes


def _footnotes(run: Run) -> list:
    if not run.is_fid:
        return ["These figures are fd_domain, NOT FID: published FIDs are left out because they "
                "cannot be compared with them."]
    return ["Reported rows are published figures (reports/literature_fid.csv, source in brackets), not "
            "measured here, shown only where their protocol is ours: dataset, sampler, output, N and FID's "
            "Inception network (reports/literature.py); they take no part in the statistics or the best marks."]


# ---- Markdown --------------------------------------------------------------------------------

def to_markdown(run: Run, tables: list) -> str:
    lines = [f"# {run.metric} tables (then every other metric): {run.manifest.get('name', run.path.name)}", ""]
    if not run.is_fid:
        lines += [fd_domain_warning(), ""]
    for table in tables:
        lines += markdown_table(table) + [""]
    return "\n".join(lines)


def fd_domain_warning() -> str:
    return ("**WARNING: these figures are fd_domain (a Frechet distance on an offline domain "
            "network), NOT FID. Do not compare them with published FIDs.**")


def markdown_table(table: Table, heading: str = "##") -> list:
    lines = [f"{heading} {table.heading}", "", table.caption, "",
             "| Model | " + " | ".join(table.dataset_labels) + " |",
             "|---|" + "---:|" * len(table.datasets)]
    for label, cells in table.measured:
        texts = [f"**{c.text()}**" if c.best else c.text() for c in cells]
        lines.append(f"| {label} | " + " | ".join(texts) + " |")
    if table.reported:
        lines.append("| *reported in the literature (not measured here)* |" + " |" * len(table.datasets))
        lines += [f"| {label} | " + " | ".join(cells) + " |" for label, cells in table.reported]
    return lines + [""] + [f"{note}  " for note in table.footnotes]


# ---- LaTeX (booktabs fragment) ---------------------------------------------------------------

_TEX = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
        "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
        "±": r"$\pm$", "—": "---", "†": r"$^{\dagger}$", "‡": r"$^{\ddagger}$", "§": r"\S{}",
        "×": r"$\times$", "<": r"$<$", ">": r"$>$", "↑": r"$\uparrow$", "↓": r"$\downarrow$"}


def tex(text: str) -> str:
    return "".join(_TEX.get(c, c) for c in str(text))


def latex_label(run: Run, table: Table) -> str:
    """tab:<run>:<sampler>-<metric>, letters, digits and hyphens only: unique across a paper's runs."""
    name = "-".join((run.manifest.get("name", run.path.name), table.sampler, table.metric))
    return "tab:" + re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def to_latex(run: Run, tables: list) -> str:
    lines = [r"% Generated by python -m reports; needs \usepackage{booktabs} in the preamble."]
    for table in tables:
        k = len(table.datasets) + 1
        lines += [r"\begin{table}[htbp]", r"\centering", r"\small",
                  rf"\caption{{{tex(table.caption)}}}", rf"\label{{{latex_label(run, table)}}}",
                  r"\begin{tabular}{l" + "r" * (k - 1) + "}", r"\toprule",
                  "Model & " + " & ".join(tex(d) for d in table.dataset_labels) + r" \\", r"\midrule"]
        for label, cells in table.measured:
            texts = [rf"\textbf{{{tex(c.text())}}}" if c.best else tex(c.text()) for c in cells]
            lines.append(tex(label) + " & " + " & ".join(texts) + r" \\")
        if table.reported:
            lines += [r"\midrule",
                      rf"\multicolumn{{{k}}}{{l}}{{\emph{{Reported in the literature (not measured here)}}}} \\"]
            lines += [tex(label) + " & " + " & ".join(tex(c) for c in cells) + r" \\"
                      for label, cells in table.reported]
        lines += [r"\bottomrule", r"\end{tabular}"]
        lines += [r"\par\smallskip", r"{\footnotesize " + r" \\ ".join(tex(n) for n in table.footnotes)
                  + "\\par}"] if table.footnotes else []
        lines += [r"\end{table}", ""]
    return "\n".join(lines)


# ---- CSV -------------------------------------------------------------------------------------

def to_csv(run: Run, tables: list) -> str:
    """One row per measured cell, for scripts: names (not display labels) and plain numbers.

    mean and std are empty where no seed finished (std also with one seed); best is 1 for the best
    measured mean of its table's column (every tie), else 0."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["dataset", "model", "output", "sampler", "metric", "mean", "std", "n", "asked", "best"])
    for table in tables:
        for (model, output), (_, cells) in zip(table.keys, table.measured):
            for dataset, cell in zip(table.datasets, cells):
                writer.writerow([dataset, model, output, table.sampler, table.metric, _number(cell.mean),
                                 _number(cell.std), cell.n, cell.asked, int(cell.best)])
    return buffer.getvalue()


def _number(x) -> str:
    return "" if x is None else repr(float(x))
