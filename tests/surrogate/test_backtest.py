"""Backtest: result shape and that target-window beats random on an easy pool."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from ase.io import write

from screener.errors import InputError
from screener.surrogate.backtest import backtest
from tests.surrogate import make_frames, pool, slab_specs

SCREENER = str(Path(sys.executable).with_name("screener"))

CHEAP = {"model": "extratrees", "n_estimators": 20, "inner_folds": 2}
CHEAP_RUN = {"budget": 14, "batch": 2, "init": 10, "repeats": 1, "compare": (), "surrogate": CHEAP}


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
    first = [found for _, _, labelled, found in rounds if labelled == 8]
    assert len(first) == 2 * len({r for _, r, _, _ in rounds})  # one start per strategy, repeat
    for s in (tw, rnd):  # the same random starts for both strategies
        assert s["curve"][0]["labelled"] == 8
        assert s["curve"][0]["hits_found"] == pytest.approx(np.mean(first[: len(first) // 2]))
        assert set(s["curve"][0]) == {"labelled", "hits_found", "mae_rest"}
        assert s["curve"][-1]["hits_found"] >= 0.9 * hits  # stop_at=0.9 ends the run there
        assert s["curve"][-1]["labelled"] == s["calls_to_find_90pct"]
        labelled = [c["labelled"] for c in s["curve"]]
        assert labelled == sorted(labelled)
    assert tw["curve"][1]["mae_rest"] is not None
    assert rnd["curve"][1]["mae_rest"] is None  # random fits only every mae_every rounds
    assert tw["calls_to_find_90pct"] is not None and rnd["calls_to_find_90pct"] is not None
    assert tw["calls_to_find_90pct"] * 2 <= rnd["calls_to_find_90pct"], (tw, rnd)
    assert ("random", 0, 8, rnd["curve"][0]["hits_found"]) in rounds


def test_backtest_is_deterministic_with_its_seed(data):
    """The same seed gives the same campaign (starts, picks, fits); another seed another."""
    target = float(np.quantile(data.energies, 0.05))
    common = dict(
        compare=("gaussian-target",), target=target, window=0.08, budget=32, batch=8, init=8,
        repeats=1, surrogate=CHEAP,
    )  # fmt: skip
    first = backtest(data, seed=3, **common)
    assert backtest(data, seed=3, **common) == first
    other = backtest(data, seed=4, **common)
    assert other["strategies"] != first["strategies"]  # other starts, other fits


def test_backtest_input_errors(data):
    with pytest.raises(InputError, match="unknown strategy"):
        backtest(data, strategy="nope")
    with pytest.raises(InputError, match=r"labels per round must be >= 1 \(got 0\)"):
        backtest(data, batch=0)
    with pytest.raises(InputError, match="a budget of 5 labels is smaller than the 10 random"):
        backtest(data, budget=5, init=10)
    with pytest.raises(InputError, match="no hits in the pool"):
        backtest(data, target=5.0)


def test_a_pool_relative_to_another_state_needs_its_own_target(data):
    """The default target is against the gas references: on a Pt(111)-relative pool it would
    count hits on the wrong scale, so only a given target is used there."""
    relative = data.take(np.arange(len(data)))
    relative.references = ["Pt(111)"] * len(relative)
    with pytest.raises(InputError, match=r"relative to Pt\(111\).*default CO target"):
        backtest(relative, **CHEAP_RUN)
    target = float(np.quantile(relative.energies, 0.1))
    assert backtest(relative, target=target, **CHEAP_RUN)["target"] == target


def test_cli_backtest_json_and_bad_input(tmp_path, cli_env):
    """`screener backtest` as a user runs it: one JSON object; bad input exits 2, one line."""
    frames = make_frames(("CO",), slab_specs(1), offsets=((0, 0),))
    for atoms in frames:
        del atoms.info["_fp"]
    path = tmp_path / "pool.extxyz"
    write(path, frames, format="extxyz")
    energies = np.array([a.info["E_ads"] for a in frames])
    target = float(np.quantile(energies, 0.1))

    def run(*args, env=cli_env):
        command = [SCREENER, "backtest", "--data", str(path), "--adsorbate", "CO", *args]
        return subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)

    done = run(
        "--target", str(target), "--window", "0.05", "--budget", "30", "--batch", "5",
        "--init", "5", "--compare", "random", "--compare", "random", "--repeats", "1", "--fast",
        "--json", env={**cli_env, "TTY_COMPATIBLE": "1"},  # rich: stderr is a terminal
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "random, repeat 1/1:" in done.stderr  # the progress display, on stderr only
    result = json.loads(done.stdout)
    assert result["pool"] == len(frames) and result["hits"] > 0
    assert set(result["strategies"]) == {"target-window", "random"}
    assert result["rows_known_by"] == "relaxed structures"
    for run_ in result["strategies"].values():
        assert run_["curve"][0]["labelled"] == 5 and run_["curve"][-1]["labelled"] <= 30
    for args, message in (
        (("--strategy", "nope"), "'--strategy': Value error, 'nope' is not one of 'target-window'"),
        (("--compare", "greedy"), "'--compare': Value error, 'greedy' is not one of"),
        (("--budget", "4", "--init", "5"), "Invalid value for --budget: must be >= --init (5)"),
        (("--batch", "0"), "'--batch': Input should be greater than or equal to 1"),
    ):
        bad = run(*args)
        assert bad.returncode == 2 and bad.stderr.startswith("error: "), bad.stderr
        assert len(bad.stderr.strip().splitlines()) == 1 and message in bad.stderr
