"""Backtest of acquisition strategies on a fully labelled pool (simulated screening campaign).

Each repeat draws ``init`` random pool rows (the same for every strategy), then in rounds: the
modAL learner (:func:`screener.surrogate.acquisition.make_learner` over a
:class:`~screener.surrogate.acquisition.PoolRegressor`) fits the surrogate on the revealed rows,
:func:`screener.surrogate.acquisition.propose` -- the proposer the loop selects with -- picks
``batch`` unrevealed rows with the strategy (spread over surfaces = the pool's CV groups), and
``learner.teach`` reveals their labels, until ``budget`` labels.  A hit is a pool row with
|dE - target| <= window.

Rows are known by their fingerprints (:mod:`screener.surrogate.data`): the site a relaxation
started from where the file says (``initial_binding``), which is what the loop knows before a
calculation, else the relaxed structure, which knows where an adsorbate ended up and so flatters
the strategies (``rows_known_by`` in the result says which).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypedDict

import numpy as np

from screener.errors import InputError
from screener.settings import load_settings
from screener.surrogate.acquisition import (
    BatchRequest,
    PoolRegressor,
    make_learner,
    pool_rows,
    propose,
)
from screener.surrogate.models import Surrogate
from screener.surrogate.strategies import check_strategy

if TYPE_CHECKING:
    from screener.surrogate.data import LabelledSet

FAST_SURROGATE = {"model": "extratrees", "n_estimators": 60}


class CurvePoint(TypedDict):
    """The campaign after one round: labels revealed, hits among them, MAE on the rest."""

    labelled: int
    hits_found: float  # a mean over repeats in StrategyRun.curve
    mae_rest: float | None  # eV; None in rounds where the surrogate was not fitted


class StrategyRun(TypedDict):
    calls_to_find_90pct: int | None  # mean over repeats; None if a repeat never got there
    calls_per_repeat: list[int | None]
    hits_found_final: float
    curve: list[CurvePoint]  # the mean over repeats


class BacktestResult(TypedDict):
    adsorbate: str
    pool: int
    hits: int
    target: float  # eV
    window: float  # eV
    budget: int
    batch: int
    init: int
    repeats: int
    spread: bool
    rows_known_by: str
    surrogate: dict[str, Any] | str  # the Surrogate's keyword arguments, or "as the loop fits it"
    strategies: dict[str, StrategyRun]  # by strategy name


def _mean_or_none(values: Sequence[float | None]) -> float | None:
    kept = [v for v in values if v is not None]
    return float(np.mean(kept)) if kept else None


def _known_by(data: LabelledSet) -> str:
    n = data.known_by_site
    if n == len(data):
        return "initial sites"
    return "relaxed structures" if n == 0 else f"initial sites ({n} of {len(data)} rows)"


def backtest(
    data: LabelledSet,
    *,
    strategy: str = "target-window",
    compare: Sequence[str] = ("random",),
    target: float | None = None,
    window: float | None = None,
    budget: int = 200,
    batch: int = 10,
    init: int = 10,
    repeats: int = 3,
    seed: int = 0,
    on_round: Callable[[str, int, int, int], None] | None = None,
    surrogate: dict[str, Any] | None = None,
    mae_every: int = 1,
    stop_at: float | None = None,
    spread: bool = True,
) -> BacktestResult:
    """Simulate a campaign per strategy on ``data`` (one adsorbate) and count hits found.

    Parameters
    ----------
    data : LabelledSet
        The fully labelled pool (one adsorbate); its groups are the surfaces batches spread over.
    strategy : str
        The strategy to test (one of :data:`~screener.surrogate.strategies.STRATEGIES`).
    compare : sequence of str
        Strategies to run on the same pool and starts.
    target, window : float
        Target dE (default: the adsorbate's, against the gas references, so a pool relative to
        another state needs one) and half width of the hit window (eV).
    budget, batch, init : int
        Labels in all, per round, and drawn at random before the first model.
    repeats : int
        Campaigns per strategy (seeds ``seed``, ``seed + 1``, ...).
    seed : int
        Seed of the first repeat: the same seed gives the same result.
    on_round : callable, optional
        ``on_round(strategy, repeat, labelled, hits_found)``, called after every round.
    surrogate : dict, optional
        Keyword arguments of the per-round :class:`Surrogate`; the default (``None`` or ``{}``)
        is what the loop fits, model selection included.  :data:`FAST_SURROGATE` is a cheaper
        mode (60 extra trees, no model selection; calibration still by grouped inner CV):
        faster and a little worse (bench/README.md gives both on the same pools).
    mae_every : int
        For strategies that need no model (``random``), the surrogate is fitted only every
        ``mae_every`` rounds, to report ``mae_rest`` (``None`` in the other rounds).
    stop_at : float, optional
        End a repeat once this share of the hits is revealed (e.g. 0.9, to save time when the
        budget is the whole pool); its curve then carries ``hits_found`` forward (and
        ``mae_rest`` None) to the labelled counts the other repeats reach.
    spread : bool
        Spread each batch over surfaces (round-robin, as the loop does) or not.

    Returns
    -------
    BacktestResult
        JSON-ready; ``calls_to_find_90pct`` of each strategy is the mean over repeats of the
        labelled count (end of the round) at which >= 90% of the hits were revealed, ``None``
        if a repeat never got there within the budget.
    """
    kinds = sorted(set(data.adsorbates))
    if len(kinds) != 1:
        raise InputError(f"backtest needs one adsorbate; data holds {', '.join(kinds) or 'none'}")
    adsorbate = kinds[0]
    names = [strategy] + [c for c in compare if c != strategy]
    for name in names:
        check_strategy(name)
    if batch < 1:
        raise InputError(f"labels per round must be >= 1 (got {batch})")
    if init < 1:
        raise InputError(f"random labels before the first model must be >= 1 (got {init})")
    if repeats < 1:
        raise InputError(f"seeds to average over must be >= 1 (got {repeats})")
    if budget < init:
        raise InputError(
            f"a budget of {budget} labels is smaller than the {init} random labels before the "
            "first model"
        )
    n = len(data)
    if init >= n:
        raise InputError(f"init ({init}) must be smaller than the pool ({n} rows)")
    budget = min(int(budget), n)
    energies = np.asarray(data.energies, dtype=float)
    reference = data.reference
    if target is None and reference is not None:
        default = load_settings().target_window(adsorbate).target
        raise InputError(
            f"{data.source or 'the pool'}: its {adsorbate} energies are relative to {reference} "
            f"(info 'reference'; from {energies.min():+.2f} to {energies.max():+.2f} eV), and "
            f"the default {adsorbate} target ({default:+.2f} eV) is against the gas "
            "references: a target on the file's scale is needed"
        )
    goal = load_settings().target_window(adsorbate, target, window)
    target, window = goal.target, goal.window
    is_hit = np.abs(energies - target) <= window
    hits = int(is_hit.sum())
    if hits == 0:
        raise InputError(
            f"no hits in the pool: no {adsorbate} row within {window} eV of {target} eV "
            f"(pool dE from {energies.min():.3f} to {energies.max():.3f} eV)"
        )
    need = math.ceil(0.9 * hits)
    X_pool = pool_rows(n)
    groups = [str(g) for g in data.groups]
    fit_kwargs = dict(surrogate or {})

    results: dict[str, StrategyRun] = {}
    for name in names:
        curves: list[list[CurvePoint]] = []
        calls: list[int | None] = []
        for r in range(repeats):
            rseed = seed + r
            start = np.random.default_rng(rseed).choice(n, size=init, replace=False)
            estimator = PoolRegressor(
                Surrogate(adsorbate, **fit_kwargs), data.fingerprints, groups, data.pure, rseed
            )
            learner = make_learner(
                estimator, name, X_training=X_pool[start], y_training=energies[start]
            )
            revealed = np.zeros(n, dtype=bool)
            revealed[start] = True
            curve: list[CurvePoint] = []
            reached = None
            round_no = 0
            while True:
                labelled = int(revealed.sum())
                found = int(is_hit[revealed].sum())
                mae_rest = None
                rest = ~revealed
                model_used = name != "random"
                if rest.any() and (model_used or round_no % max(1, mae_every) == 0):
                    mean = learner.estimator.predict(X_pool[rest])
                    mae_rest = float(np.mean(np.abs(mean - energies[rest])))
                curve.append(CurvePoint(labelled=labelled, hits_found=found, mae_rest=mae_rest))
                if reached is None and found >= need:
                    reached = labelled
                if on_round:
                    on_round(name, r, labelled, found)
                if labelled >= budget:
                    break
                if stop_at is not None and found >= math.ceil(stop_at * hits):
                    break
                k = min(batch, budget - labelled)
                request = BatchRequest(
                    n=k,
                    surfaces=groups,
                    target=target,
                    window=window,
                    exclude=revealed.copy(),
                    seed=rseed * 100_003 + round_no,
                    spread=spread,
                )
                picked = propose(learner, request, X_pool).indices
                if len(picked) == 0:
                    break
                learner.teach(X_pool[picked], energies[picked])
                revealed[picked] = True
                round_no += 1
            curves.append(curve)
            calls.append(reached)
        labelled_at = max(curves, key=len)
        mean_curve: list[CurvePoint] = []
        for i, point in enumerate(labelled_at):
            at = [c[min(i, len(c) - 1)] for c in curves]
            mean_curve.append(
                CurvePoint(
                    labelled=point["labelled"],
                    hits_found=float(np.mean([p["hits_found"] for p in at])),
                    mae_rest=_mean_or_none(
                        [
                            p["mae_rest"] if i < len(c) else None
                            for p, c in zip(at, curves, strict=True)
                        ]
                    ),
                )
            )
        results[name] = StrategyRun(
            calls_to_find_90pct=None
            if any(c is None for c in calls)
            else int(round(float(np.mean(calls)))),
            calls_per_repeat=calls,
            hits_found_final=float(np.mean([c[-1]["hits_found"] for c in curves])),
            curve=mean_curve,
        )
    return BacktestResult(
        adsorbate=adsorbate,
        pool=n,
        hits=hits,
        target=float(target),
        window=float(window),
        budget=budget,
        batch=int(batch),
        init=int(init),
        repeats=int(repeats),
        spread=bool(spread),
        rows_known_by=_known_by(data),
        surrogate=fit_kwargs or "as the loop fits it",
        strategies=results,
    )
