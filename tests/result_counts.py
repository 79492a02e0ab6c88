"""Row counts of a finished sweep's results.csv, told apart by kind: the networks' figures, and the
memorisation check (nn_train_share, extractor "pixels"), which is one row per trial and sampler."""
import pandas as pd


def assert_row_counts(results_csv, network_rows: int) -> None:
    results = pd.read_csv(results_csv)
    pixels = results[results["extractor"] == "pixels"]
    assert len(results) - len(pixels) == network_rows
    assert set(pixels["metric"]) == {"nn_train_share"} and (pixels["output"] == "x_hat").all()
    network = results[results["extractor"] != "pixels"]
    assert sorted(zip(pixels["trial_id"], pixels["sampler"])) == sorted(
        set(zip(network["trial_id"], network["sampler"])))  # one per trial and sampler
