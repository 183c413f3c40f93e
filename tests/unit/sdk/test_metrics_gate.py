"""CI metric gates over summary.json and status.metrics."""

from __future__ import annotations

import pytest

from ftjobs.sdk.metrics_gate import evaluate, fine_tuned_metrics, parse_thresholds

SUMMARY = {
    "metrics": {
        "split": "test",
        "base": {"accuracy": 0.5},
        "fineTuned": {"accuracy": 0.9, "perplexity": 12.0},
    }
}


def test_min_and_max_thresholds() -> None:
    gates = parse_thresholds(["accuracy=0.85"], ["perplexity=15"])
    results = evaluate(gates, fine_tuned_metrics(SUMMARY))
    assert [r.passed for r in results] == [True, True]
    assert str(gates[0]) == "accuracy >= 0.85" and str(gates[1]) == "perplexity <= 15"


def test_below_the_bar_and_missing_metrics_fail() -> None:
    results = evaluate(parse_thresholds(["accuracy=0.95", "f1=0.1"]), fine_tuned_metrics(SUMMARY))
    assert [r.passed for r in results] == [False, False]
    assert results[1].actual is None


def test_status_metrics_shape_is_accepted_too() -> None:
    status_metrics = {"split": "test", "base": {}, "fineTuned": {"exact_match": 0.7}}
    assert fine_tuned_metrics(status_metrics) == {"exact_match": 0.7}


@pytest.mark.parametrize("bad", ["accuracy", "accuracy=", "=0.5", "accuracy=high"])
def test_malformed_thresholds_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="NAME=NUMBER"):
        parse_thresholds([bad])
