"""One acquisition path: the loop's select and the backtest pick through the same proposer."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from screener import learning
from screener.enumerate.seed import plan_seed, seed
from screener.jobs.submit import submit
from screener.store import open_store
from screener.store.documents import ModelVersion, PredictionChunk
from screener.surrogate import acquisition
from screener.surrogate import backtest as backtest_module
from screener.surrogate.acquisition import (
    BatchRequest,
    PoolRegressor,
    StoredPredictions,
    make_learner,
    pool_rows,
    propose,
)
from screener.surrogate.data import LabelledSet
from screener.surrogate.strategies import STRATEGIES
from workflows.profiles import PROFILES

EMT = PROFILES["emt"].identity

T = -0.67


class FixedSurrogate:
    """A stand-in Surrogate whose fit learns nothing and whose predict gives fixed values."""

    def __init__(self, mean: np.ndarray, std: np.ndarray) -> None:
        self.mean, self.std = mean, std
        self.fits = 0

    def fit(self, fingerprints, energies, groups, pure, seed: int = 0) -> FixedSurrogate:
        self.fits += 1
        return self

    def predict(self, fingerprints) -> tuple[np.ndarray, np.ndarray]:
        assert len(fingerprints) == len(self.mean)  # PoolRegressor predicts the whole pool
        return self.mean.copy(), self.std.copy()


def test_stored_and_refitted_estimators_give_the_same_picks():
    """The same (mean, std) picks the same batch whether stored (loop) or fitted (backtest)."""
    rng = np.random.default_rng(7)
    n = 300
    mean, std = rng.normal(-0.6, 0.3, n), rng.uniform(0.02, 0.3, n)
    surfaces = [f"s{i % 23}" for i in range(n)]
    labelled = rng.choice(n, size=20, replace=False)
    exclude = np.zeros(n, dtype=bool)
    exclude[labelled] = True
    X = pool_rows(n)
    for strategy in STRATEGIES:
        for spread in (True, False):
            request = BatchRequest(
                n=30, surfaces=surfaces, target=T, exclude=exclude, seed=11, spread=spread
            )
            fitted = PoolRegressor(FixedSurrogate(mean, std), [{}] * n, surfaces, None, 0)
            backtest_like = make_learner(
                fitted, strategy, X_training=X[labelled], y_training=mean[labelled]
            )
            loop_like = make_learner(StoredPredictions(mean, std), strategy)
            # best as the backtest's learner knows it, from its training labels
            best = -float(np.min(np.abs(mean[labelled] - T)))
            a = propose(backtest_like, request)
            b = propose(loop_like, BatchRequest(**{**request.__dict__, "best": best}))
            assert a.indices.tolist() == b.indices.tolist(), (strategy, spread)
            np.testing.assert_array_equal(a.scores, b.scores)
            assert not exclude[a.indices].any()
            if spread:
                assert len({surfaces[i] for i in a.indices}) == 23  # every surface once first


@pytest.fixture
def cu_co(settings):
    with open_store(settings) as store:
        seed(plan_seed("Cu", "CO", max_miller=1, settings=settings), store)
    return settings


def test_select_and_backtest_go_through_one_proposer(cu_co, monkeypatch):
    """Both entry points call acquisition.propose; on one pool of (mean, std) with the same
    sites excluded they pick the same batch, and it is spread over surfaces."""
    assert backtest_module.propose is acquisition.propose  # the backtest imports the proposer
    calls: list[tuple[str, BatchRequest, acquisition.Proposal]] = []
    real = acquisition.propose

    def spy(learner, request, X_pool=None):
        proposal = real(learner, request, X_pool)
        calls.append((type(learner.estimator).__name__, request, proposal))
        return proposal

    monkeypatch.setattr(acquisition, "propose", spy)  # what learning.select imports
    monkeypatch.setattr(backtest_module, "propose", spy)

    with open_store(cu_co) as store:
        sites = learning.space_sites("Cu", "CO")
        ids, surfaces = sites.ids, sites.surfaces
        n = len(ids)
        counts = Counter(surfaces)
        assert len(counts) >= 3
        crowded = counts.most_common(1)[0][0]
        # the crowded surface holds every site near the target: by score alone, a batch would
        # come from it; the others lie outside the window, graded
        on_crowded = np.array([s == crowded for s in surfaces])
        mean = np.where(on_crowded, T, T + 0.2) + 0.001 * np.arange(n)
        std = np.full(n, 0.05)

        # the backtest, on these sites as a labelled pool, with a surrogate that predicts them
        data = LabelledSet(
            fingerprints=sites.fps,
            energies=mean.copy(),
            adsorbates=["CO"] * n,
            groups=list(surfaces),
            pure=["Cu"] * n,
        )
        monkeypatch.setattr(
            backtest_module, "Surrogate", lambda adsorbate, **kw: FixedSurrogate(mean, std)
        )
        batch = len(counts)
        backtest_module.backtest(
            data,
            strategy="target-window",
            compare=(),
            target=T,
            window=0.1,
            init=2,
            batch=batch,
            budget=2 + batch,
            repeats=1,
        )
        assert len(calls) == 1 and calls[0][0] == "PoolRegressor"
        _, bt_request, bt_proposal = calls[0]
        initial = np.asarray(bt_request.exclude)
        assert initial.sum() == 2

        # the loop: the same predictions stored as a model version's, the same sites taken
        version = ModelVersion(
            space="Cu", adsorbate="CO", profile=EMT, version=1, n_train=0,
            data_key="test", file="none", sha256="none", scored_sites=n,
        )  # fmt: skip
        version.save(force_insert=True)
        PredictionChunk(
            model=version.id, space="Cu", adsorbate="CO", profile=EMT, version=1, chunk=0,
            level="site", sites=ids, surfaces=surfaces, mean=mean.tolist(), std=std.tolist(),
        ).save(force_insert=True)  # fmt: skip
        taken = {ids[i] for i in np.flatnonzero(initial)}
        for site_id in sorted(taken):  # queued for DFT: select never picks them again
            assert submit(site_id, "emt", store).state == "submitted"
        assert learning.attempted_sites("emt") == taken
        rows = learning.select(store, "Cu", batch, profile="emt", adsorbates=["CO"])

    assert len(calls) == 2 and calls[1][0] == "StoredPredictions"
    assert [r["site_id"] for r in rows] == [ids[i] for i in bt_proposal.indices]
    assert calls[1][2].indices.tolist() == bt_proposal.indices.tolist()
    assert {r["strategy"] for r in rows} == {"target-window"}
    assert not taken & {r["site_id"] for r in rows}
    # spread: one site of every surface, though the crowded one holds the best scores
    assert sorted(r["surface_id"] for r in rows) == sorted(counts)
    kept_crowded = int((on_crowded & ~initial).sum())
    assert kept_crowded >= 2
    unspread = propose(
        make_learner(StoredPredictions(mean, std), "target-window"),
        BatchRequest(n=batch, surfaces=surfaces, target=T, exclude=initial, spread=False),
    )
    assert {surfaces[i] for i in unspread.indices[:kept_crowded]} == {crowded}
