"""Surrogate fit/predict/calibration, evaluate() and the baseline, on real-slab synthetic pools."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from screener.errors import InputError
from screener.surrogate import features as features_module
from screener.surrogate.models import (
    BOOSTING_MIN_ROWS,
    CANDIDATES,
    Surrogate,
    baseline_evaluate,
    evaluate,
    grouped_folds,
)
from tests.surrogate import pool

FAST = {"model": "extratrees", "n_estimators": 40}


@pytest.fixture(scope="module")
def clean():
    return pool("CO")


@pytest.fixture(scope="module")
def noisy():
    return pool("CO", noise=0.1, seed=1, seeds=3)


def test_grouped_folds_keep_groups_whole_and_cover_every_row():
    groups = [f"g{i % 7}" for i in range(50)]
    splits = grouped_folds(groups, 5, seed=3)
    assert len(splits) == 5
    seen = np.concatenate([test for _, test in splits])
    assert sorted(seen.tolist()) == list(range(50))
    for train, test in splits:
        assert not {groups[i] for i in train} & {groups[i] for i in test}
    assert [t.tolist() for _, t in grouped_folds(groups, 5, seed=3)] == [
        t.tolist() for _, t in splits
    ]


def test_fit_predict_info_and_round_trip(clean):
    s = Surrogate("CO", n_estimators=20, candidates=("extratrees", "randomforest")).fit(
        clean.fingerprints, clean.energies, clean.groups, clean.pure, seed=0
    )
    info = s.info
    assert info["adsorbate"] == "CO" and info["n"] == len(clean)
    assert info["model"] in info["candidates"] and set(info["candidates"]) >= {
        "extratrees",
        "randomforest",
    }
    assert set(info["cv"]) >= {"mae", "rmse", "coverage90", "n_folds"}
    assert info["scale"] > 0 and info["references"]["Pd"] < info["references"]["Au"]
    mean, std = s.predict(clean.fingerprints)
    assert mean.shape == std.shape == (len(clean),) and (std > 0).all()
    m2, s2 = s.predict(X=s.features(clean.fingerprints))
    np.testing.assert_array_equal(mean, m2)
    np.testing.assert_array_equal(std, s2)
    back = Surrogate.loads(s.dumps())
    np.testing.assert_array_equal(back.predict(clean.fingerprints)[0], mean)
    again = Surrogate("CO", n_estimators=20, candidates=("extratrees", "randomforest")).fit(
        clean.fingerprints, clean.energies, clean.groups, clean.pure, seed=0
    )
    np.testing.assert_array_equal(again.predict(clean.fingerprints)[0], mean)


def test_forests_are_candidates_up_to_their_row_limit_and_a_fixed_model_at_any_size(clean):
    n = len(clean)
    fit = (clean.fingerprints, clean.energies, clean.groups, clean.pure)
    below = Surrogate("CO", n_estimators=10, forest_max_rows=n, inner_estimators=10).fit(*fit)
    assert {"extratrees", "randomforest"} <= set(below.info["candidates"])
    above = Surrogate("CO", n_estimators=10, forest_max_rows=n - 1, inner_estimators=10).fit(*fit)
    assert not {"extratrees", "randomforest"} & set(above.info["candidates"])
    assert above.info["candidates"] and above.info["model"] in above.info["candidates"]
    fixed = Surrogate("CO", model="extratrees", n_estimators=10, forest_max_rows=1).fit(*fit)
    assert fixed.info["model"] == "extratrees"


def test_evaluate_beats_trivial_mean_predictor(clean):
    result = evaluate(clean, folds=4, seed=0, **FAST)
    assert {"mae", "rmse", "coverage90", "n", "folds", "model"} <= set(result)
    assert result["n"] == len(clean) and result["folds"] == 4 and result["model"] == "extratrees"
    y = clean.energies
    trivial = np.zeros(len(y))
    for train, test in grouped_folds(clean.groups, 4, seed=0):
        trivial[test] = y[train].mean()
    trivial_mae = np.mean(np.abs(y - trivial))
    assert result["mae"] < 0.5 * trivial_mae, (result["mae"], trivial_mae)
    base = baseline_evaluate(clean, folds=4, seed=0)
    assert {"mae", "rmse", "n"} <= set(base) and base["mae"] < trivial_mae


def test_references_are_fitted_on_training_rows_only(clean, monkeypatch):
    calls = []
    real_fit = features_module.Featurizer.fit

    def spy(self, fingerprints, energies, pure):
        calls.append(set(np.round(energies, 12).tolist()))
        return real_fit(self, fingerprints, energies, pure)

    monkeypatch.setattr(features_module.Featurizer, "fit", spy)
    y = np.round(clean.energies, 12)
    splits = grouped_folds(clean.groups, 3, seed=5)
    evaluate(clean, folds=3, seed=5, **FAST)
    per_fold = len(calls) // len(splits)
    assert per_fold == 4  # 3 inner folds + the final refit, per outer fold
    for k, (_, test) in enumerate(splits):
        held_out = set(y[test].tolist()) - set(np.delete(y, test).tolist())
        assert held_out  # energies only the test fold has: the check below checks something
        for seen in calls[k * per_fold : (k + 1) * per_fold]:
            assert not seen & held_out


def test_calibrated_std_covers_about_90_percent(noisy):
    result = evaluate(noisy, folds=5, seed=0, **FAST)
    assert 0.8 <= result["coverage90"] <= 0.97, result


def test_model_selection_runs_with_all_candidates_on_a_small_set(clean):
    small = clean.take(np.arange(0, len(clean), 4))
    result = evaluate(small, folds=3, seed=0, n_estimators=10)
    # any candidate may win; boosting and its blend are skipped below BOOSTING_MIN_ROWS
    assert len(small) < BOOSTING_MIN_ROWS
    assert result["model"] in set(CANDIDATES) - {"boosting", "boosting+kernel"}
    assert len(result["fold_models"]) == 3


def test_evaluate_input_errors(clean):
    one_group = dataclasses.replace(clean.take(np.arange(12)), groups=["same"] * 12)
    with pytest.raises(InputError, match="at least 2 groups"):
        evaluate(one_group)
    with pytest.raises(InputError, match="at least 10 rows"):
        evaluate(clean.take(np.arange(5)))
    with pytest.raises(InputError, match="unknown model"):
        evaluate(clean, model="nope")
    n = len(clean)
    mixed = dataclasses.replace(clean, references=["Pt(111)"] * (n // 2) + [None] * (n - n // 2))
    with pytest.raises(InputError, match=r"energies relative to different states"):
        evaluate(mixed, **FAST)


def test_evaluate_says_which_scale_the_energies_are_on(clean):
    assert evaluate(clean, folds=3, **FAST)["reference"] is None
    relative = dataclasses.replace(clean, references=["Pt(111)"] * len(clean))
    assert evaluate(relative, folds=3, **FAST)["reference"] == "Pt(111)"


def test_kernel_model_and_its_blend_with_boosting(clean, noisy):
    """The kernel ridge model predicts with a bootstrap spread; the blend's mean is the mean of
    its parts' and its spread holds their spreads and their disagreement; a Surrogate picks
    among all three from one inner CV and survives a round trip."""
    from screener.surrogate.features import Featurizer
    from screener.surrogate.models import BaggedBoosting, BaggedKernelRidge, Blend

    featurizer = Featurizer("CO").fit(clean.fingerprints, clean.energies, clean.pure)
    X, y = featurizer.transform(clean.fingerprints), clean.energies
    kernel = BaggedKernelRidge(seed=0).fit(X, y)
    mean, spread = kernel.predict_spread(X)
    assert np.isfinite(mean).all() and (spread > 0).any()
    assert np.mean(np.abs(mean - y)) < 0.5 * np.mean(np.abs(y - y.mean()))  # it learned
    boosting = BaggedBoosting(members=2, rounds=30, seed=0).fit(X, y)
    blend = Blend([BaggedBoosting(members=2, rounds=30, seed=0), BaggedKernelRidge(seed=0)])
    blend.fit(X, y)
    (mb, sb), (mk, sk) = boosting.predict_spread(X), kernel.predict_spread(X)
    bm, bs = blend.predict_spread(X)
    np.testing.assert_allclose(bm, (mb + mk) / 2)
    np.testing.assert_allclose(bs, np.sqrt((sb**2 + sk**2) / 2 + ((mb - mk) / 2) ** 2))
    # the smallest pool boosting takes part in: whole groups, just over BOOSTING_MIN_ROWS rows
    order = np.argsort(noisy.groups, kind="stable")
    small = noisy.take(order[: BOOSTING_MIN_ROWS + 20])
    s = Surrogate("CO", candidates=("boosting", "kernel", "boosting+kernel"), inner_folds=2)
    s.fit(small.fingerprints, small.energies, small.groups, small.pure, seed=0)
    assert set(s.info["candidates"]) == {"boosting", "kernel", "boosting+kernel"}
    again = Surrogate.loads(s.dumps())
    np.testing.assert_allclose(
        again.predict(small.fingerprints)[0], s.predict(small.fingerprints)[0]
    )


def test_ensemble_linear_keys_on_the_binding_elements_not_their_bonds(clean):
    """The ensemble of a site is the element counts of its binding atoms; the bond columns
    (binding_ring_A-B, binding_binding_A-B) are features of its model, not part of its key."""
    from screener.surrogate.features import Featurizer
    from screener.surrogate.models import _make_regressor

    featurizer = Featurizer("CO", "zones+layers+bonds").fit(
        clean.fingerprints, clean.energies, clean.pure
    )
    names = featurizer.feature_names
    model = _make_regressor("ensemble-linear", 10, 0, 1, names)
    assert sorted(names[k] for k in model.ensemble_columns) == sorted(
        f"binding_{e}" for e in featurizer.elements
    )
    assert any(n.startswith("binding_ring_") for n in names)
