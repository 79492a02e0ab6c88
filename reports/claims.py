"""Claim checks (claims.md): do the paper's claims hold on the seeds that finished?

Per dataset: (1) does the decomposition help: FID(x1) < FID(x_hat) and FID(x2) < FID(x_hat), both;
(2) does the SVAE beat each baseline, on outputs fixed before the figures are seen, each baseline at
its own sampler, Holm-corrected; (3) which kind of split each SVAE seed learned (this project's
operational definition, on its sigma maps), and claim 1 again on the semantic seeds. Every claim
ends in one of four verdicts, decided by a stated rule and given with its reason.
A difference is always FID(a) - FID(b): negative means a is better, since lower FID is better.
"""
import statistics
from dataclasses import dataclass

from reports.comparisons import DECIDING, DIFFERENCES, fixed_outputs, paired, scope_families, welch_family
from reports.power import PLANNED_SEEDS, format_seeds, paired_figures, welch_figures
from reports.rundir import GENERATORS, Run
from reports.stats import ALPHA, CONTRADICTED, MIN_SEEDS, NO_DIFFERENCE, SUPPORTED, too_few
from reports.tables import fd_domain_warning
from svae.preview import FLAT_STD, HIGH_FREQUENCY

SYNTACTIC_SHARE = 0.5  # at least this share of sigma's spectral energy above HIGH_FREQUENCY

COMPARISON = ("a comparison is \"supported\" if its 95% interval lies below 0, \"contradicted\" if it "
              "lies above 0, \"no significant difference\" if it contains 0, and \"too few seeds\" "
              f"with fewer than {MIN_SEEDS} seeds (the count is stated)")
CLAIM1_RULE = ("the paper's claim is FID(x1) < FID(x_hat) AND FID(x2) < FID(x_hat). Each is decided by the "
               "95% t-interval of its paired differences over seeds (x1, x2 and x_hat decode the same "
               f"latents): {COMPARISON}. The claim is supported only if both are, contradicted if either "
               "is, and otherwise no significant difference (or too few seeds). Error rates as they are: a "
               "two-sided 95% interval lies wholly on the wrong side of 0 with probability at most 2.5%. "
               "\"Supported\" needs both intervals below 0, so a false \"supported\" has probability at most "
               "2.5% (an intersection-union test: no correction is needed); \"contradicted\" needs only "
               "either above 0, so either of the two tests can contradict and a false \"contradicted\" has "
               "probability up to 5% (2 x 2.5%, when x1, x2 and x_hat are all equal). "
               "min(x1, x2) - x_hat is shown but decides nothing: were x1, x2 and x_hat equal in law, "
               "the minimum would still beat x_hat two times in three.")
CLAIM2_RULE = ("the SVAE's outputs are fixed before any figure is seen: x_hat always, and x1, the component "
               "sigma weights more (named per seed by the rule below, which never sees a FID). Each "
               "baseline is taken at its own sampler (column \"baseline sampler\"): the two-stage VAE at "
               "its second stage, as Dai & Wipf report it, the others at the GMM. Each comparison is a "
               "two-sided Welch t-test of SVAE minus baseline; the p-values of all of a dataset's "
               "comparisons are Holm-corrected (family-wise 5%). A comparison is supported if its "
               "corrected p < 0.05 and the SVAE is lower, contradicted if p < 0.05 and the baseline is "
               f"lower, no significant difference otherwise, too few seeds if a side has under {MIN_SEEDS}. "
               "The claim is supported if every baseline loses to at least one fixed SVAE output and "
               "beats none; contradicted if some baseline beats every fixed SVAE output; too few seeds "
               "if any comparison has too few; no significant difference otherwise.")
SPLIT_RULE = ("this project's operational definition (the paper's distinction between semantic and "
              "syntactic splits is qualitative): for each sigma map (sigma / 255, its mean removed) the "
              f"share of its spectral energy (|FFT|^2) at radial frequencies above {HIGH_FREQUENCY} cycles "
              f"per pixel (wavelengths under {1 / HIGH_FREQUENCY:g} pixels); a seed's share is the mean over "
              f"its maps. Syntactic if the share is at least {SYNTACTIC_SHARE}, semantic below; maps with "
              f"std under {FLAT_STD} are skipped, and a seed with no other map is \"constant\" (sigma "
              "does not split). The verdict is claim 1's rule on the semantic seeds.")
CONFIDENCE = ("With five seeds (or fewer) no test reaches high confidence: a 95% interval from five "
              "runs is wide, and the claims are checked on several datasets without a correction "
              "across datasets or claims (claim 2 is corrected within a dataset); a verdict here is "
              "evidence, not proof.")
COMPONENT_RULE_FALLBACK = "x1 and x2 are the decoder's first and second components (no naming rule recorded)."
KINDS = ("semantic", "syntactic", "constant", "unknown")


@dataclass(frozen=True)
class Verdict:
    dataset: str
    claim: str
    verdict: str
    why: str  # the reason, as claims.md states it


# ---- split kind ------------------------------------------------------------------------------

def split_kind(shares: list) -> tuple:
    """(kind, share) for a seed's sigma maps, from the high-frequency share of each (None where flat:
    svae/preview.py high_frequency_share)."""
    shares = [s for s in shares if s is not None]
    if not shares:
        return "constant", None
    share = statistics.fmean(shares)
    return ("syntactic" if share >= SYNTACTIC_SHARE else "semantic"), share


def split_kinds(run: Run, dataset: str) -> dict:
    """seed -> (kind, share, where its sigma figures are) for each finished SVAE seed ("unknown" without sigma)."""
    kinds = {}
    finished = run.finished_ids()
    for seed, trial_id in run.trials(dataset, run.split_model):
        if trial_id not in finished:
            continue
        sampler, preview = run.generated(trial_id)
        shares = preview.sigma_shares.get(sampler) if preview is not None else None
        kinds[seed] = (*split_kind(shares), f"{sampler}, {len(shares)} maps (trials/{trial_id}/preview)") \
            if shares is not None else ("unknown", None, None)
    return kinds


# ---- the claims ------------------------------------------------------------------------------

def claims_sampler(run: Run) -> str:
    """The paper's GMM sampler; the prior where no GMM was run."""
    return next((s for s in GENERATORS if s in run.samplers), run.samplers[0])


def decomposition(run: Run, sampler: str, dataset: str) -> dict:
    """seed -> {output: fid} for the SVAE seeds with x_hat, x1 and x2 all scored."""
    by_output = {o: run.seed_fids(sampler, dataset, run.split_model, o) for o in ("x_hat", "x1", "x2")}
    seeds = sorted(set.intersection(*(set(f) for f in by_output.values())))
    return {s: {o: by_output[o][s] for o in by_output} for s in seeds}


def component_rule(run: Run) -> str:
    return run.protocol.get("components") or COMPONENT_RULE_FALLBACK


def check_claims(run: Run) -> tuple:
    """(claims.md text, [Verdict]) for every dataset of the run."""
    sampler = claims_sampler(run)
    lines = ["# Claim checks", ""]
    if not run.is_fid:
        lines += [fd_domain_warning(), ""]
    lines += [f"Figures: {run.metric} of the SVAE's {sampler} sampler (baselines: see claim 2), over the "
              f"seeds that finished. A difference is {run.metric}(a) - {run.metric}(b): below 0 means a "
              "is better.", "",
              f"**Confidence.** {CONFIDENCE}", "",
              "Verdicts: \"supported\", \"contradicted\", \"no significant difference\", or \"too few "
              f"seeds (n = k < {MIN_SEEDS})\"; each says why.", "",
              "Decision rules:", "",
              f"- Claim 1 (the decomposition helps): {CLAIM1_RULE}",
              f"- Claim 2 (the SVAE beats the baselines): {CLAIM2_RULE}",
              f"- Claim 3 (split kind): {SPLIT_RULE}",
              f"- Names of the components: {component_rule(run)}", ""]
    verdicts = []
    for dataset in run.datasets:
        kinds = split_kinds(run, dataset)
        per_seed = decomposition(run, sampler, dataset)
        lines += [f"## {dataset}", ""]
        for claim, (text, verdict, why) in (
                ("decomposition helps", _claim_decomposition(per_seed, kinds, run.metric)),
                ("SVAE beats baselines", _claim_baselines(run, sampler, dataset)),
                ("semantic splits help", _claim_split_kind(per_seed, kinds))):
            lines += text + [""]
            verdicts.append(Verdict(dataset, claim, verdict, why))
    return "\n".join(lines), verdicts


def _claim_decomposition(per_seed: dict, kinds: dict, metric: str) -> tuple:
    lines = [f"### 1. Does the decomposition help? {metric}(x1), {metric}(x2) against {metric}(x_hat)",
             "", "| seed | split kind | x_hat | x1 | x2 | " + " | ".join(DIFFERENCES) + " |",
             "|---|---|" + "---:|" * (3 + len(DIFFERENCES))]
    for seed, f in per_seed.items():
        diffs = " | ".join(_signed(d(f)) for d in DIFFERENCES.values())
        lines.append(f"| {seed} | {kinds.get(seed, ('unknown',))[0]} | {f['x_hat']:.2f} | "
                     f"{f['x1']:.2f} | {f['x2']:.2f} | {diffs} |")
    if not per_seed:
        lines.append("| no SVAE seed with x_hat, x1 and x2 scored |" + " |" * (4 + len(DIFFERENCES)))
    table, verdict, why = _both_hold(per_seed)
    return lines + [""] + table + ["", _verdict_line(verdict, why)], verdict, why


def _both_hold(per_seed: dict, seeds: str = "SVAE seed(s)") -> tuple:
    """Claim 1's rule: (summary table, verdict, reason) on x1 - x_hat and x2 - x_hat."""
    lines = ["| difference | seeds below 0 | mean | 95% t-interval | decides | verdict |",
             "|---|---:|---:|---:|---|---|"]
    rows = paired(per_seed)
    for row in rows:
        deciding = row.name in DECIDING
        lines.append(f"| {row.name} | {sum(d < 0 for d in row.diffs)} of {len(row.diffs)} | {_signed(row.mean)} | "
                     f"{_ci(row.interval)} | {'yes' if deciding else 'no (descriptive)'} | "
                     f"{row.verdict if deciding else '—'} |")
    lines += ["", f"Power (paired t-test, 80%, from the observed spread of the differences, at {ALPHA:g}):", "",
              f"| difference | smallest difference {PLANNED_SEEDS} seeds detect | seeds the observed mean needs |",
              "|---|---:|---:|"]
    verdicts = {row.name: row.verdict for row in rows}
    for row in (r for r in rows if r.name in DECIDING):
        smallest, needed = paired_figures(row.diffs)
        lines.append(f"| {row.name} | {_size(smallest)} | {format_seeds(needed)} |")
    x1, x2 = (verdicts[row] for row in DECIDING)
    n = len(per_seed)
    if n < MIN_SEEDS:
        return lines, too_few(n), f"only {n} {seeds} with x_hat, x1 and x2 scored; {MIN_SEEDS} needed."
    if x1 == x2 == SUPPORTED:
        return lines, SUPPORTED, "both x1 and x2 beat x_hat: both intervals lie below 0."
    beaten = [row for row in DECIDING if verdicts[row] == CONTRADICTED]
    if beaten:
        return lines, CONTRADICTED, f"{' and '.join(beaten)}: the interval lies above 0 (x_hat is better)."
    open_rows = [row for row in DECIDING if verdicts[row] != SUPPORTED]
    return lines, NO_DIFFERENCE, f"{' and '.join(open_rows)}: the interval contains 0."


def _claim_baselines(run: Run, sampler: str, dataset: str) -> tuple:
    lines = ["### 2. Does the SVAE beat the baselines?", ""]
    svae = fixed_outputs(run, sampler, dataset)
    baselines, beyond = scope_families(run)
    if not svae or not baselines:
        why = "no SVAE seed finished" if not svae else "the run has no purely variational baseline"
        return lines + [f"Nothing to compare: {why}.", "", *_beyond_lines(run, sampler, dataset, svae, beyond),
                        _verdict_line(too_few(0), f"{why}.")], too_few(0), f"{why}."
    lines += [f"SVAE outputs fixed in advance: {', '.join(svae)} (at the {sampler} sampler). {_scope_note(run)}",
              ""]
    table, by_baseline = _comparisons(run, sampler, dataset, svae, baselines)
    verdict, why = _baselines_verdict({run.label(b): vs for b, vs in by_baseline.items()})
    return lines + table + ["", _verdict_line(verdict, why), "",
                            *_beyond_lines(run, sampler, dataset, svae, beyond)], verdict, why


def _scope_note(run: Run) -> str:
    if not run.scope_recorded:
        return ("This run's manifest does not record which models are purely variational: every baseline "
                "is compared.")
    return ("The paper's claim covers purely variational architectures (not relying on normalising flows); "
            "models outside it (registry fact) are compared beyond the claim, below.")


def _beyond_lines(run: Run, sampler: str, dataset: str, svae: dict, beyond: list) -> list:
    """The out-of-scope baselines, compared the same way in a family of their own; they decide nothing."""
    if not svae or not beyond:
        return []
    table, by_baseline = _comparisons(run, sampler, dataset, svae, beyond)
    said = "; ".join(f"{run.label(b)}: {', '.join(dict.fromkeys(vs))}" for b, vs in by_baseline.items())
    return [f"Beyond the paper's claim ({', '.join(run.label(b) for b in beyond)}: not purely variational; "
            "Holm-corrected as a family of their own; no part of the verdict):", ""] + table + \
        ["", f"**Beyond the paper's claim:** {said}.", ""]


def _comparisons(run: Run, sampler: str, dataset: str, svae: dict, baselines: list) -> tuple:
    """(table lines, {baseline: [verdict per fixed output]}) of one Holm family of comparisons."""
    comparisons = welch_family(run, sampler, dataset, svae, baselines)
    family = sum(c.p is not None for c in comparisons)
    lines = [f"Power: the Welch test's at 80%, from the observed spreads, at the family's strictest Holm level "
             f"({ALPHA:g}/{max(family, 1)}, so enough in any order).", "",
             "| comparison | baseline sampler | SVAE mean (n) | baseline mean (n) | difference | "
             "95% Welch interval (uncorrected) | Holm-corrected interval (level) | Holm-corrected p | verdict | "
             f"smallest difference {PLANNED_SEEDS} seeds a side detect | seeds a side this difference needs |",
             "|---|---|---:|---:|---:|---:|---:|---:|---|---:|---:|"]
    by_baseline = {}
    for c in comparisons:
        by_baseline.setdefault(c.baseline, []).append(c.verdict)
        smallest, needed = welch_figures(c.ours, c.theirs, ALPHA / max(family, 1))
        lines.append(f"| SVAE {c.output} vs {run.label(c.baseline)} | {c.sampler} | {_mean_n(c.ours)} | "
                     f"{_mean_n(c.theirs)} | {_signed(c.diff)} | {_ci(c.interval)} | "
                     f"{_ci(c.corrected)}{'' if c.level is None else f' ({c.level:.2%})'} | "
                     f"{'n/a' if c.p is None else f'{c.p:.3g}'} | {c.verdict} | {_size(smallest)} | "
                     f"{format_seeds(needed)} |")
    return lines, by_baseline


def _baselines_verdict(by_baseline: dict) -> tuple:
    few = {b: next(v for v in vs if v.startswith("too few")) for b, vs in by_baseline.items()
           if any(v.startswith("too few") for v in vs)}
    if few:
        return next(iter(few.values())), "; ".join(f"against {b}: {v}" for b, v in few.items()) \
            + f" on one side ({MIN_SEEDS} seeds a side needed)."
    winners = [b for b, vs in by_baseline.items() if all(v == CONTRADICTED for v in vs)]
    if winners:
        return CONTRADICTED, f"{', '.join(winners)} beat(s) every fixed SVAE output."
    if all(SUPPORTED in vs and CONTRADICTED not in vs for vs in by_baseline.values()):
        return SUPPORTED, "every baseline loses to at least one fixed SVAE output and beats none."
    return NO_DIFFERENCE, "not every baseline loses significantly to a fixed SVAE output (after Holm)."


def _claim_split_kind(per_seed: dict, kinds: dict) -> tuple:
    lines = ["### 3. Which kind of split did each seed learn? (this project's operational definition)", "",
             f"Syntactic: at least {SYNTACTIC_SHARE} of sigma's spectral energy above {HIGH_FREQUENCY} "
             "cycles per pixel; semantic below.", "",
             "| seed | sigma maps from | high-frequency share | kind |", "|---|---|---:|---|"]
    lines += [f"| {seed} | {source or 'no samples with sigma'} | "
              f"{'n/a' if share is None else f'{share:.3f}'} | {kind} |"
              for seed, (kind, share, source) in kinds.items()]
    if not kinds:
        lines.append("| no finished SVAE seed | | | |")
    semantic = {seed: f for seed, f in per_seed.items() if kinds.get(seed, ("unknown",))[0] == "semantic"}
    table, verdict, why = _both_hold(semantic, "semantic SVAE seed(s)")
    lines += ["", "Claim 1 on the semantic seeds only (the paper: in a semantic split x1 and x2 beat x_hat):",
              ""] + table
    return lines + ["", _verdict_line(verdict, why)], verdict, why


# ---- formatting ------------------------------------------------------------------------------

def _verdict_line(verdict: str, why: str) -> str:
    return f"**Verdict: {verdict}.** Why: {why}"


def _signed(x) -> str:
    return "n/a" if x is None else f"{x:+.2f}"


def _ci(interval) -> str:
    return "n/a (fewer than 2 seeds)" if interval is None else f"[{interval[0]:+.2f}, {interval[1]:+.2f}]"


def _size(x) -> str:
    return "n/a (fewer than 2 seeds)" if x is None else f"{x:.2f}"


def _mean_n(values: list) -> str:
    return f"{statistics.fmean(values):.2f} (n={len(values)})" if values else "— (n=0)"
