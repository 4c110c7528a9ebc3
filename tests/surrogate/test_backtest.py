"""Backtest: result shape and that target-window beats random on an easy pool."""

from __future__ import annotations

import json

import numpy as np
import pytest

from screener.errors import InputError
from screener.surrogate.backtest import backtest
from tests.surrogate import pool

CHEAP = {"model": "extratrees", "n_estimators": 20, "inner_folds": 2}


@pytest.fixture(scope="module")
def data():
    return pool("CO", seeds=3)


def test_target_window_finds_hits_faster_than_random(data):
    # rare hits at the strong-binding end (Pd-rich hollows): ~7% of the pool
    target = float(np.quantile(data.energies, 0.035))
    window = 0.06
    rounds = []
    result = backtest(
        data,
        strategy="target-window",
        compare=("random",),
        target=target,
        window=window,
        budget=len(data),
        batch=8,
        init=8,
        repeats=1,
        seed=0,
        surrogate=CHEAP,
        mae_every=100,
        stop_at=0.9,
        on_round=lambda *args: rounds.append(args),
    )
    json.dumps(result)
    assert result["pool"] == len(data) and result["target"] == target
    hits = int(np.sum(np.abs(data.energies - target) <= window))
    assert result["hits"] == hits and 0.04 * len(data) < hits < 0.12 * len(data)
    tw = result["strategies"]["target-window"]
    rnd = result["strategies"]["random"]
    for s in (tw, rnd):
        assert s["curve"][0] == {
            "labelled": 8,
            "hits_found": s["curve"][0]["hits_found"],
            "mae_rest": s["curve"][0]["mae_rest"],
        }
        assert s["curve"][-1]["hits_found"] >= 0.9 * hits  # stop_at=0.9 ends the run there
        assert s["curve"][-1]["labelled"] == s["calls_to_find_90pct"]
        labelled = [c["labelled"] for c in s["curve"]]
        assert labelled == sorted(labelled)
    assert tw["curve"][1]["mae_rest"] is not None
    assert rnd["curve"][1]["mae_rest"] is None  # random fits only every mae_every rounds
    assert tw["calls_to_find_90pct"] is not None and rnd["calls_to_find_90pct"] is not None
    assert tw["calls_to_find_90pct"] * 2 <= rnd["calls_to_find_90pct"], (tw, rnd)
    assert ("random", 0, 8, rnd["curve"][0]["hits_found"]) in rounds


def test_backtest_input_errors(data):
    with pytest.raises(InputError, match="unknown strategy"):
        backtest(data, strategy="nope")
    with pytest.raises(InputError, match="batch"):
        backtest(data, batch=0)
    with pytest.raises(InputError, match="budget"):
        backtest(data, budget=5, init=10)
    with pytest.raises(InputError, match="no hits in the pool"):
        backtest(data, target=5.0)
