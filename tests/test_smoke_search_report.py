"""A smoke-sized sweep with the search on: its report shows the search of every model with a knob, and
claim 2 with RAE-L2 outside the paper's scope; its --no-search companion and the page that puts the two
side by side (real runs: bench.run in a subprocess)."""
import json
import subprocess
import sys

import pytest

from bench.models import MODELS

# every kind once: a knob (svae), none (two-stage), not variational (rae); 20 candidates (5 factors x 2 seeds each)
MODELS_RUN = ["svae", "two-stage", "rae"]


def sweep(run_dir, *options):
    out = subprocess.run([sys.executable, "-m", "bench.run", "--preset", "smoke", "--datasets", "synthetic",
                          "--models", *MODELS_RUN, "--seeds", "1", "--fid-samples", "100", *options,
                          "--set", "epochs=1", "train_subset=300",
                          "--out", str(run_dir)], capture_output=True, text=True, timeout=1800, check=False)
    assert out.returncode == 0, out.stderr[-3000:]


@pytest.mark.slow
def test_a_searched_smoke_run_reports_every_models_search_and_claim_two_within_its_scope(tmp_path):
    run_dir = tmp_path / "run"
    sweep(run_dir, "--search")
    report = (run_dir / "report.md").read_text()
    section = report.split("## Search: every model's knob tuned alike")[1].split("\n## ")[0]
    rows = [line for line in section.splitlines() if line.startswith("| synthetic |")]
    assert sorted(row.split(" | ")[1] for row in rows) == sorted(m for m in MODELS_RUN if MODELS[m].knob)
    assert all("1: " in row for row in rows)  # the as-published factor, scored in every search
    assert "two-stage: not searched (" in section
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["search"]["wall_s"] > 0 and manifest["config"]["settings"]["synthetic"]["tuned"]
    memorisation = report.split("## Memorisation")[1].split("\n## ")[0]  # beside the headline, every model
    assert sorted(line.split(" | ")[1] for line in memorisation.splitlines() if line.startswith("| synthetic")) \
        == sorted(MODELS[m].label for m in MODELS_RUN)
    claims = (run_dir / "claims.md").read_text()
    judged, beyond = claims.split("### 2.")[1].split("### 3.")[0].split("Beyond the paper's claim (RAE-L2")
    assert "vs RAE-L2" not in judged and "| SVAE x_hat vs RAE-L2 |" in beyond

    # The same config with every knob as published, and the page beside the two
    sweep(tmp_path / "published", "--no-search", "--no-reports")
    page = tmp_path / "as_published.md"
    out = subprocess.run([sys.executable, "-m", "bench", "as-published", str(run_dir), str(tmp_path / "published"),
                          "--out", str(page)], capture_output=True, text=True, timeout=600, check=False)
    assert out.returncode == 0, out.stderr[-3000:]
    rows = {line.split(" | ")[0].lstrip("| "): line.split(" | ") for line in page.read_text().splitlines()
            if line.startswith(("| SVAE", "| two-stage", "| RAE"))}
    svae = manifest["search"]["results"][[r["model"] for r in manifest["search"]["results"]].index("svae")]
    assert rows["SVAE x_hat"][1] == f"beta {svae['published']['beta']:g} → {svae['chosen']['beta']:g}"
    assert rows["two-stage VAE"][1].startswith("not searched (")
    # the two-stage VAE has no knob: the same settings and seed under both, so the same figure
    assert rows["two-stage VAE"][2] == rows["two-stage VAE"][4] and rows["two-stage VAE"][6].startswith("+0.00")
