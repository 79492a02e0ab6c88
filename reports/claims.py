"""Claim checks (claims.md): do the paper's claims hold on the seeds that finished?

Per dataset: (1) does the decomposition help, FID(x1), FID(x2) against FID(x_hat); (2) does the
SVAE beat each baseline; (3) which kind of split each SVAE seed learned, measured on its sigma maps,
and claim 1 again within each kind. Every claim ends in a verdict decided by a stated rule.
A difference is always FID(a) - FID(b): negative means a is better, since lower FID is better.
"""
import statistics
from dataclasses import dataclass

import numpy as np

from reports.rundir import GENERATORS, Run
from reports.stats import MIN_SEEDS, decide, t_interval, welch_interval
from reports.tables import fd_domain_warning, model_label

HIGH_FREQUENCY = 0.25  # cycles per pixel: wavelengths shorter than 4 pixels
SYNTACTIC_SHARE = 0.5  # at least this share of sigma's spectral energy above HIGH_FREQUENCY
FLAT_STD = 0.01  # a sigma map whose std (sigma in [0, 1]) is below this mixes nothing: skipped

PAIRED_RULE = (f"supported if at least {MIN_SEEDS} seeds, every seed's difference is below 0 and "
               "the 95% t-interval of the mean difference lies below 0; not supported if at least "
               f"{MIN_SEEDS} seeds and that interval lies above 0; inconclusive otherwise (always "
               f"with fewer than {MIN_SEEDS} seeds).")
WELCH_RULE = (f"a comparison is supported if both sides have at least {MIN_SEEDS} seeds and the "
              "95% Welch interval of the difference (SVAE minus baseline) lies below 0; not "
              f"supported if both have at least {MIN_SEEDS} seeds and it lies above 0; inconclusive "
              "otherwise. The claim is supported if every comparison is, not supported if any "
              "comparison is not supported, inconclusive otherwise. The two-stage VAE is taken at its "
              "own second-stage sampler when the run has it, as Dai & Wipf report it.")
SPLIT_RULE = (f"for each sigma map (sigma / 255, its mean removed) the share of its spectral "
              f"energy (|FFT|^2) at radial frequencies above {HIGH_FREQUENCY} cycles per pixel "
              f"(wavelengths under {1 / HIGH_FREQUENCY:g} pixels); a seed's share is the mean over "
              f"its maps. Syntactic if the share is at least {SYNTACTIC_SHARE}, semantic below; maps "
              f"with std under {FLAT_STD} are skipped, and a seed with no other map is \"constant\" "
              "(sigma does not split).")
CONFIDENCE = ("With five seeds (or fewer) no test reaches high confidence: a 95% interval from five "
              "runs is wide, several claims are checked on several datasets without correction for "
              "multiple comparisons, and a verdict here is evidence, not proof.")
DIFFERENCES = {
    "x1 - x_hat": lambda f: f["x1"] - f["x_hat"],
    "x2 - x_hat": lambda f: f["x2"] - f["x_hat"],
    "min(x1, x2) - x_hat": lambda f: min(f["x1"], f["x2"]) - f["x_hat"],
}
DECIDING = "min(x1, x2) - x_hat"  # the decomposition helps if the better of its parts beats x_hat
KINDS = ("semantic", "syntactic", "constant", "unknown")
OWN_SAMPLER = {"two-stage": "second-stage"}  # baselines whose paper samples with their own generator


@dataclass(frozen=True)
class Verdict:
    dataset: str
    claim: str
    verdict: str


# ---- split kind ------------------------------------------------------------------------------

def high_frequency_share(sigma_map: np.ndarray):
    """Share of a 2-D sigma map's (uint8) spectral energy above HIGH_FREQUENCY; None if flat."""
    s = sigma_map.astype(np.float64) / 255
    if s.std() < FLAT_STD:
        return None
    power = np.abs(np.fft.fft2(s - s.mean())) ** 2
    radius = np.hypot(np.fft.fftfreq(s.shape[0])[:, None], np.fft.fftfreq(s.shape[1])[None, :])
    return float(power[radius > HIGH_FREQUENCY].sum() / power.sum())


def split_kind(sigma: np.ndarray) -> tuple:
    """(kind, share) for a seed's sigma maps, N x 1 x H x W uint8."""
    shares = [s for s in map(high_frequency_share, sigma.reshape(-1, *sigma.shape[-2:]))
              if s is not None]
    if not shares:
        return "constant", None
    share = statistics.fmean(shares)
    return ("syntactic" if share >= SYNTACTIC_SHARE else "semantic"), share


def split_kinds(run: Run, dataset: str) -> dict:
    """seed -> (kind, share, samples file) for each finished SVAE seed ("unknown" without sigma)."""
    kinds = {}
    finished = run.finished_ids()
    for seed, trial_id in run.trials(dataset, "svae"):
        if trial_id not in finished:
            continue
        sampler, samples = run.generated(trial_id)
        kinds[seed] = (*split_kind(samples["sigma"]), f"trials/{trial_id}/samples/{sampler}.npz") \
            if samples is not None and "sigma" in samples else ("unknown", None, None)
    return kinds


# ---- the claims ------------------------------------------------------------------------------

def claims_sampler(run: Run) -> str:
    """The paper's GMM sampler; the prior where no GMM was run."""
    return next((s for s in GENERATORS if s in run.samplers), run.samplers[0])


def decomposition(run: Run, sampler: str, dataset: str) -> dict:
    """seed -> {output: fid} for the SVAE seeds with x_hat, x1 and x2 all scored."""
    by_output = {o: run.seed_fids(sampler, dataset, "svae", o) for o in ("x_hat", "x1", "x2")}
    seeds = sorted(set.intersection(*(set(f) for f in by_output.values())))
    return {s: {o: by_output[o][s] for o in by_output} for s in seeds}


def check_claims(run: Run) -> tuple:
    """(claims.md text, [Verdict]) for every dataset of the run."""
    sampler = claims_sampler(run)
    lines = ["# Claim checks", ""]
    if not run.is_fid:
        lines += [fd_domain_warning(), ""]
    lines += [f"Figures: {run.metric} of the {sampler} sampler, over the seeds that finished. A "
              f"difference is {run.metric}(a) - {run.metric}(b): below 0 means a is better.", "",
              f"**Confidence.** {CONFIDENCE}", "",
              "Decision rules:", "",
              f"- Paired differences over seeds (claims 1 and 3): {PAIRED_RULE} The verdict is "
              f"decided on {DECIDING}: the decomposition helps if the better of x1 and x2 beats "
              "x_hat (which part is better is not fixed from seed to seed).",
              f"- SVAE against baselines (claim 2): {WELCH_RULE}",
              f"- Split kind (claim 3): {SPLIT_RULE}", ""]
    verdicts = []
    for dataset in run.datasets:
        kinds = split_kinds(run, dataset)
        per_seed = decomposition(run, sampler, dataset)
        lines += [f"## {dataset}", ""]
        for claim, (text, verdict) in (
                ("decomposition helps", _claim_decomposition(per_seed, kinds, run.metric)),
                ("SVAE beats baselines", _claim_baselines(run, sampler, dataset)),
                ("semantic splits help", _claim_split_kind(per_seed, kinds))):
            lines += text + [""]
            verdicts.append(Verdict(dataset, claim, verdict))
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
    table, verdicts = _paired_summary("difference", {
        name: [difference(f) for f in per_seed.values()] for name, difference in DIFFERENCES.items()})
    verdict = verdicts[DECIDING]
    return lines + [""] + table + ["", _verdict_line(verdict, f"on {DECIDING}; {PAIRED_RULE}")], verdict


def _paired_summary(first_column: str, diffs_by_row: dict) -> tuple:
    """Summary table (seeds below 0, mean, 95% t-interval, verdict) and {row: verdict}."""
    lines = [f"| {first_column} | seeds below 0 | mean | 95% t-interval | verdict |",
             "|---|---:|---:|---:|---|"]
    verdicts = {}
    for row, diffs in diffs_by_row.items():
        mean, interval = t_interval(diffs)
        agree = sum(d < 0 for d in diffs)
        verdicts[row] = decide(len(diffs), interval, agree == len(diffs))
        lines.append(f"| {row} | {agree} of {len(diffs)} | {_signed(mean)} | {_ci(interval)} | "
                     f"{verdicts[row]} |")
    return lines, verdicts


def _claim_baselines(run: Run, sampler: str, dataset: str) -> tuple:
    lines = ["### 2. Does the SVAE beat the baselines?", ""]
    svae = {o: run.seed_fids(sampler, dataset, "svae", o) for o in run.outputs("svae")}
    svae = {o: f for o, f in svae.items() if f}
    baselines = [m for m in run.models if m != "svae"]
    if not svae or not baselines:
        why = "no SVAE seed finished" if not svae else "the run has no baseline"
        return lines + [f"Nothing to compare: {why}.", "",
                        _verdict_line("inconclusive", WELCH_RULE)], "inconclusive"
    # The best output is picked on the very figures it is then tested on, which favours the SVAE.
    best = min(svae, key=lambda o: statistics.fmean(svae[o].values()))
    lines += [f"SVAE best output: {best} (the lowest mean, picked on these same figures, which "
              "favours the SVAE).", "",
              "| comparison | SVAE mean (n) | baseline mean (n) | difference | 95% Welch interval | verdict |",
              "|---|---:|---:|---:|---:|---|"]
    verdicts = []
    for baseline in baselines:
        # A baseline is compared at its own generator where its paper has one (two-stage: stage 2).
        own = OWN_SAMPLER.get(baseline)
        theirs_sampler = own if own and run.seed_fids(own, dataset, baseline, "x_hat") else sampler
        theirs = list(run.seed_fids(theirs_sampler, dataset, baseline, "x_hat").values())
        label = f"{model_label(baseline)} x_hat" + (f" ({theirs_sampler})" if theirs_sampler != sampler else "")
        for output in dict.fromkeys([best, "x_hat"]):
            ours = list(svae.get(output, {}).values())
            diff, interval = welch_interval(ours, theirs)
            verdicts.append(decide(min(len(ours), len(theirs)), interval))
            lines.append(f"| SVAE {output} vs {label} | "
                         f"{_mean_n(ours)} | {_mean_n(theirs)} | {_signed(diff)} | {_ci(interval)} "
                         f"| {verdicts[-1]} |")
    verdict = ("supported" if all(v == "supported" for v in verdicts)
               else "not supported" if "not supported" in verdicts else "inconclusive")
    return lines + ["", _verdict_line(verdict, WELCH_RULE)], verdict


def _claim_split_kind(per_seed: dict, kinds: dict) -> tuple:
    lines = ["### 3. Which kind of split did each seed learn?", "",
             "| seed | sigma maps from | high-frequency share | kind |", "|---|---|---:|---|"]
    lines += [f"| {seed} | {source or 'no samples with sigma'} | "
              f"{'n/a' if share is None else f'{share:.3f}'} | {kind} |"
              for seed, (kind, share, source) in kinds.items()]
    if not kinds:
        lines.append("| no finished SVAE seed | | | |")
    lines += ["", f"Claim 1 ({DECIDING}) by kind:", ""]
    by_kind = {kind: [] for kind in KINDS}
    for seed, f in per_seed.items():
        by_kind[kinds.get(seed, ("unknown",))[0]].append(DIFFERENCES[DECIDING](f))
    table, verdicts = _paired_summary("kind", {k: d for k, d in by_kind.items() if d})
    semantic = verdicts.get("semantic", "inconclusive")
    lines += table + ["", "The paper: in a semantic split x1 and x2 beat x_hat (the claim tested "
                      f"here on the semantic seeds, on {DECIDING})."]
    return lines + ["", _verdict_line(semantic, PAIRED_RULE)], semantic


# ---- formatting ------------------------------------------------------------------------------

def _verdict_line(verdict: str, rule: str) -> str:
    return f"**Verdict: {verdict}.** Rule: {rule}"


def _signed(x) -> str:
    return "n/a" if x is None else f"{x:+.2f}"


def _ci(interval) -> str:
    return "n/a (fewer than 2 seeds)" if interval is None else f"[{interval[0]:+.2f}, {interval[1]:+.2f}]"


def _mean_n(values: list) -> str:
    return f"{statistics.fmean(values):.2f} (n={len(values)})" if values else "— (n=0)"
