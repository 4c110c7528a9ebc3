"""Acquisition scores, the proposer (batch spread over surfaces), and its modAL learner."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy import stats

from screener.errors import InputError
from screener.surrogate.acquisition import (
    QUERY_STRATEGIES,
    BatchRequest,
    PoolRegressor,
    StoredPredictions,
    expected_closeness_improvement,
    make_learner,
    pool_rows,
    propose,
    scores,
    target_window_query,
    window_probability,
)
from screener.surrogate.models import Surrogate
from screener.surrogate.strategies import STRATEGIES
from tests.surrogate import pool

T, W = -0.67, 0.1


def test_defaults():
    from screener.settings import load_settings

    settings = load_settings()
    assert settings.target_window("CO").target == -0.67  # Tran & Ulissi's
    assert settings.target_window("H").target == -0.27
    assert {a: settings.target_window(a).window for a in ("CO", "H", "O", "OH")} == dict.fromkeys(
        ("CO", "H", "O", "OH"), 0.1
    )
    assert STRATEGIES[0] == "target-window"


def test_targets_are_settings(monkeypatch):
    from screener.errors import InputError
    from screener.settings import load_settings

    monkeypatch.setenv("SCREENER_TARGETS", '{"OH": {"target": 0.8, "window": 0.05}}')
    settings = load_settings()
    assert (settings.target_window("OH").target, settings.target_window("OH").window) == (0.8, 0.05)
    assert settings.target_window("CO").target == -0.67  # the others keep their defaults
    monkeypatch.setenv("SCREENER_TARGETS", '{"Xe": {"target": 0.8, "window": 0.05}}')
    with pytest.raises(InputError, match="unknown adsorbate 'Xe'"):
        load_settings()
    monkeypatch.setenv("SCREENER_TARGETS", '{"O": {"target": 1.0, "window": 0}}')
    with pytest.raises(InputError, match="targets.O.window"):
        load_settings()


def test_target_window_prefers_in_window_means_and_is_a_probability():
    mean = np.array([-0.67, -0.60, -0.90, -0.30, -0.67])
    std = np.array([0.05, 0.05, 0.05, 0.05, 0.5])
    p = scores("target-window", mean, std, target=T, window=W)
    assert np.argmax(p) == 0 and p[0] == pytest.approx(stats.norm.cdf(2) - stats.norm.cdf(-2))
    assert p[1] > p[4] > p[2] > p[3] >= 0  # a wide std spreads mass outside the window
    assert (p <= 1).all()
    # far tails stay accurate (no 1 - 1 cancellation) and std 0 is an indicator
    assert window_probability([-5.0], [0.1], 10.0, 11.0)[0] == 0.0
    assert window_probability([5.0], [0.1], -1.0, 4.0)[0] < 1e-20
    assert window_probability([0.0, 1.0], [0.0, 0.0], -0.1, 0.1).tolist() == [1.0, 0.0]


def test_ei_closed_form_matches_monte_carlo():
    rng = np.random.default_rng(0)
    for m, s, d in [(-0.5, 0.2, 0.15), (-0.67, 0.05, 0.1), (0.0, 0.3, 0.4), (-1.2, 0.1, 0.05)]:
        x = rng.normal(m, s, 400_000)
        mc = np.maximum(0.0, d - np.abs(x - T)).mean()
        closed = expected_closeness_improvement([m], [s], T, d)[0]
        assert closed == pytest.approx(mc, abs=2e-4)
    # best closeness -0.05: a site predicted on target beats one far away
    e = scores("ei", np.array([-0.67, -0.2]), np.array([0.1, 0.1]), target=T, window=W, best=-0.05)
    assert e[0] > e[1] >= 0


def test_gaussian_target_draws_in_proportion_to_weight():
    mean = np.array([T, T + 0.33, T + 2.0])
    weights = np.exp(-((mean - T) ** 2) / (2 * 0.33**2))
    rng = np.random.default_rng(1)
    first = [
        np.argmax(scores("gaussian-target", mean, np.zeros(3), target=T, window=W, rng=rng))
        for _ in range(4000)
    ]
    freq = np.bincount(first, minlength=3) / 4000
    np.testing.assert_allclose(freq, weights / weights.sum(), atol=0.03)


def test_other_strategies():
    mean = np.array([-0.67, -0.2, -0.5])
    std = np.array([0.01, 0.3, 0.1])
    assert np.argmax(scores("max-std", mean, std, target=T, window=W)) == 1
    u = scores("ucb", mean, std, target=T, window=W)
    assert u.tolist() == pytest.approx([-0.0 + 0.01, -0.47 + 0.3, -0.17 + 0.1])
    r = scores("random", mean, std, target=T, window=W, rng=3)
    assert r.shape == (3,) and ((r >= 0) & (r < 1)).all()
    with pytest.raises(InputError, match="unknown strategy 'nope'.*target-window"):
        scores("nope", mean, std, target=T, window=W)


def pick(strategy, mean, std, surfaces, n, **kwargs) -> np.ndarray:
    """The proposer over stored (mean, std), as the loop calls it."""
    learner = make_learner(StoredPredictions(np.asarray(mean), np.asarray(std)), strategy)
    return propose(learner, BatchRequest(n=n, surfaces=surfaces, **kwargs)).indices


def test_propose_spreads_over_surfaces_skips_excluded_and_respects_n():
    # surface A holds the four best sites, B and C one each
    mean = np.array([-0.67, -0.66, -0.68, -0.65, -0.60, -0.55, -1.5])
    std = np.full(7, 0.05)
    surfaces = ["A", "A", "A", "A", "B", "C", "C"]
    picked = pick("target-window", mean, std, surfaces, 3, target=T, window=W)
    assert sorted(surfaces[i] for i in picked) == ["A", "B", "C"]
    assert picked[0] == 0 and picked.tolist() == [0, 4, 5]
    # second pass takes each surface's next best
    five = pick("target-window", mean, std, surfaces, 5, target=T, window=W)
    assert five.tolist()[:3] == [0, 4, 5] and five[3] in (1, 2) and five[4] == 6
    plain = pick("target-window", mean, std, surfaces, 3, target=T, window=W, spread=False)
    assert plain[0] == 0 and sorted(plain[1:].tolist()) == [1, 2]  # the best scores, all on A
    excl = pick("target-window", mean, std, surfaces, 3, target=T, window=W, exclude=[0, 4])
    assert 0 not in excl and 4 not in excl and len(excl) == 3
    mask = np.ones(7, dtype=bool)
    mask[[1, 6]] = False
    assert sorted(pick("max-std", mean, std, surfaces, 10, target=T, window=W, exclude=mask)) == [
        1,
        6,
    ]
    assert len(pick("random", mean, std, surfaces, 100, target=T, window=W)) == 7
    with pytest.raises(InputError, match="batch size"):
        pick("random", mean, std, surfaces, 0, target=T, window=W)
    with pytest.raises(InputError, match="unknown strategy"):
        pick("best", mean, std, surfaces, 2, target=T, window=W)
    with pytest.raises(ValueError, match="one entry per pool site"):
        propose(
            make_learner(StoredPredictions(mean, std)),
            BatchRequest(n=2, surfaces=surfaces, target=T),
            pool_rows(5),
        )


def test_proposal_scores_are_the_strategy_scores_of_the_picks():
    rng = np.random.default_rng(2)
    mean, std = rng.normal(-0.6, 0.3, 50), rng.uniform(0.02, 0.3, 50)
    surfaces = [f"s{i % 7}" for i in range(50)]
    for strategy in STRATEGIES:
        learner = make_learner(StoredPredictions(mean, std), strategy)
        request = BatchRequest(n=9, surfaces=surfaces, target=T, seed=4, best=-0.05)
        proposal = propose(learner, request)
        expected = scores(
            strategy, mean, std, target=T, window=W, best=-0.05, rng=np.random.default_rng(4)
        )
        assert len(proposal) == 9 and len(set(proposal.indices.tolist())) == 9
        np.testing.assert_array_equal(proposal.scores, expected[proposal.indices])
        assert len({surfaces[i] for i in proposal.indices}) == 7  # one per surface first


def test_query_strategies_are_modal_query_strategies():
    """Each strategy is a plain modAL query strategy: modAL's own ActiveLearner can use it."""
    from modAL.models import ActiveLearner

    assert tuple(QUERY_STRATEGIES) == STRATEGIES
    for name in STRATEGIES:
        assert make_learner(StoredPredictions(), name).query_strategy is QUERY_STRATEGIES[name]
    mean = np.array([-0.2, -0.67, -0.66, -1.0])
    std = np.full(4, 0.05)
    learner = ActiveLearner(StoredPredictions(mean, std), query_strategy=target_window_query)
    X = pool_rows(4)
    idx, rows, metrics = learner.query(
        X, n_instances=2, return_metrics=True, target=T, surfaces=["a", "a", "b", "b"]
    )
    assert idx.tolist() == [1, 2] and rows.tolist() == [[1], [2]] and metrics.shape == (2,)


def test_stored_predictions_are_read_and_never_refitted():
    mean, std = np.array([0.1, 0.2, 0.3]), np.array([0.01, 0.02, 0.03])
    estimator = StoredPredictions(mean, std)
    m, s = estimator.predict(pool_rows(3)[[2, 0]], return_std=True)
    assert m.tolist() == [0.3, 0.1] and s.tolist() == [0.03, 0.01]
    learner = make_learner(estimator, "ei")
    propose(learner, BatchRequest(n=2, surfaces=["a", "b", "c"], target=0.2))
    assert learner.X_training is None  # the loop's learner holds no training data
    with pytest.raises(TypeError, match="never refitted"):
        learner.teach(pool_rows(3)[:1], np.array([0.0]))


def test_active_learner_query_and_teach_with_a_surrogate():
    data = pool("CO")
    X = pool_rows(len(data))
    start = np.arange(0, len(data), 8)
    estimator = PoolRegressor(
        Surrogate("CO", model="extratrees", n_estimators=20),
        data.fingerprints,
        data.groups,
        data.pure,
    )
    learner = make_learner(
        estimator, "target-window", X_training=X[start], y_training=data.energies[start]
    )
    taken = np.zeros(len(data), dtype=bool)
    taken[start] = True
    request = BatchRequest(n=5, surfaces=data.groups, target=T, window=W, exclude=taken)
    idx = propose(learner, request).indices
    assert len(idx) == 5 and not taken[idx].any()
    assert len({data.groups[i] for i in idx}) == 5
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no sklearn deprecation from modAL's checks
        learner.teach(X[idx], data.energies[idx])
    assert len(learner.X_training) == len(start) + 5
    mean, std = learner.estimator.predict(X, return_std=True)
    assert mean.shape == (len(data),) and (std > 0).all()
    assert learner.estimator.model_.info["n"] == len(start) + 5
    # random asks no model: a lazy PoolRegressor is not fitted for it
    learner = make_learner(
        estimator, "random", X_training=X[start], y_training=data.energies[start]
    )
    assert len(propose(learner, request)) == 5 and learner.estimator.model_ is None


def test_active_learner_with_a_plain_sklearn_forest():
    from sklearn.ensemble import RandomForestRegressor

    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, size=(60, 2))
    y = X[:, 0] - 0.67
    learner = make_learner(
        RandomForestRegressor(n_estimators=10, random_state=0),
        "ucb",
        X_training=X[:10],
        y_training=y[:10],
    )
    surfaces = [str(i) for i in range(50)]
    idx = propose(learner, BatchRequest(n=4, surfaces=surfaces, target=T), X[10:]).indices
    assert len(idx) == 4
    learner.teach(X[10:][idx], y[10:][idx])
    assert len(learner.y_training) == 14
