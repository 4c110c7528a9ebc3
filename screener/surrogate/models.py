"""The surrogate: a regressor chosen by grouped CV on site features, with calibrated uncertainty.

:meth:`Surrogate.fit` does, on the rows it is given only:

1. grouped inner CV (``inner_folds``, default 3, over the CV groups = slabs): for each candidate
   regressor, fit the featurizer's references and the regressor on the inner training part and
   predict the inner held-out part -- out-of-fold mean and raw spread for every row;
2. picks the candidate with the lowest out-of-fold MAE (``model=`` fixes it instead);
3. calibrates: raw sigma = sqrt(spread^2 + floor^2), with the floor (a small absolute term, so
   that sites where all trees agree still get some width) picked from a few multiples of the
   out-of-fold MAE to give the narrowest intervals, and a conformal factor ``scale`` = the
   finite-sample 90% quantile of |residual| / sigma divided by 1.645, so that
   ``mean +/- 1.645 * std`` covers ~90% of held-out sites (below 10 rows the floor is at least
   the labels' standard deviation and 0.1 eV: too few rows to calibrate on);
4. refits featurizer and the chosen regressor on all rows.

Candidates: ``extratrees`` and ``randomforest`` (spread = standard deviation of the per-tree
predictions; up to ``forest_max_rows`` rows, beyond which the smoother models below fit the features
better and the forests' inner fits would only add to the fit time); ``boosting``
(:class:`BaggedBoosting`: gradient-boosted trees on bootstrap replicas, spread = their standard
deviation; from ``BOOSTING_MIN_ROWS`` rows); ``ensemble-linear`` (:class:`EnsembleLinear`: a ridge
model per binding ensemble, zones feature set only); ``kernel`` (:class:`BaggedKernelRidge`: ridge
regression on a Nystroem approximation of an RBF kernel over the standardised features, on bootstrap
replicas); ``boosting+kernel`` (:class:`Blend`: the mean of the two, whose errors differ: trees cut
the features into boxes, the kernel interpolates smoothly between sites); and ``gp`` (a Gaussian
process with an RBF + white-noise kernel on standardised features; spread = its predictive std) when
there are at most ``gp_max_rows`` rows.
"""

from __future__ import annotations

import io
import math
import pickle
import re
import time
import warnings
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TypedDict

import numpy as np

from screener.errors import InputError
from screener.surrogate.features import (
    DEFAULT_FEATURE_SET,
    Featurizer,
    best_feature_set,
    element_counts,
)

Z90 = 1.6448536269514722  # standard normal 95th percentile: mean +/- Z90*std is a 90% interval
CANDIDATES = (
    "extratrees", "randomforest", "boosting", "ensemble-linear", "kernel", "boosting+kernel", "gp",
)  # fmt: skip
#: candidates that average others: their inner-CV predictions come from their parts'
BLENDS = {"boosting+kernel": ("boosting", "kernel")}
FORESTS = ("extratrees", "randomforest")  # candidates up to ``Surrogate.forest_max_rows`` rows
_BINDING_COUNT = re.compile(r"binding_[A-Z][a-z]?")  # a zones column: binding atoms of element
FLOOR_FRACTIONS = (0.05, 0.1, 0.2, 0.4, 0.8)
MIN_ROWS = 10
SMALL_N_FLOOR = 0.1  # eV: least std floor when fitted on fewer than MIN_ROWS rows
PREDICT_CHUNK = 20_000


# -- folds -------------------------------------------------------------------------------------
def grouped_folds(
    groups: Sequence[str], folds: int, seed: int = 0
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Grouped K-fold splits (train, test) with whole groups per fold, shuffled by ``seed``.

    Groups are visited in a seeded random order, largest first, each put into the fold that has
    the fewest rows so far; ``folds`` is capped at the number of groups.
    """
    groups = np.asarray([str(g) for g in groups], dtype=object)
    names, inverse, sizes = np.unique(groups, return_inverse=True, return_counts=True)
    k = min(int(folds), len(names))
    if k < 2:
        raise InputError(f"grouped CV needs at least 2 groups (got {len(names)})")
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(names))
    order = order[np.argsort(-sizes[order], kind="stable")]
    load = np.zeros(k)
    fold_of_group = np.empty(len(names), dtype=int)
    for g in order:
        f = int(np.argmin(load))
        fold_of_group[g] = f
        load[f] += sizes[g]
    fold_of_row = fold_of_group[inverse]
    rows = np.arange(len(groups))
    return [(rows[fold_of_row != f], rows[fold_of_row == f]) for f in range(k)]


def _inner_splits(groups: np.ndarray, folds: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Grouped splits when there are >= 2 groups, else plain shuffled K-fold over rows."""
    if len(set(groups.tolist())) >= 2:
        return grouped_folds(groups, folds, seed)
    n = len(groups)
    rng = np.random.default_rng(seed)
    fold_of_row = rng.permutation(n) % min(folds, n)
    rows = np.arange(n)
    return [(rows[fold_of_row != f], rows[fold_of_row == f]) for f in range(min(folds, n))]


# -- regressors --------------------------------------------------------------------------------
BOOSTING_MEMBERS = 5  # bootstrap replicas of the boosted trees: their spread is the raw std
BOOSTING_ROUNDS = 300
BOOSTING_MIN_ROWS = 200  # below this, boosting is skipped: 300 rounds cost ~1 s per fit even on
# ten rows (7 s of a 19-row fit), and the forests are as good there
ENSEMBLE_MIN_ROWS = 30  # an ensemble with fewer training rows uses the model of all rows
KERNEL_MEMBERS = 4  # bootstrap replicas of the kernel ridge model
KERNEL_COMPONENTS = 1000  # Nystroem landmarks: kernel ridge on all rows costs n^2 per prediction
KERNEL_GAMMA = 0.15  # RBF gamma x the number of varying standardised features
KERNEL_ALPHA = 0.003  # ridge penalty on the Nystroem features


class BaggedBoosting:
    """Gradient-boosted trees (scikit-learn's HistGradientBoostingRegressor) on bootstrap
    replicas of the rows: the mean of the replicas is the prediction, their standard deviation
    the raw spread (calibrated like the forests' per-tree spread)."""

    def __init__(self, members: int = BOOSTING_MEMBERS, rounds: int = BOOSTING_ROUNDS, seed=0):
        self.members, self.rounds, self.seed = members, rounds, seed
        self.models_: list = []

    def fit(self, X: np.ndarray, y: np.ndarray) -> BaggedBoosting:
        from sklearn.ensemble import HistGradientBoostingRegressor

        rng = np.random.default_rng(self.seed)
        self.models_ = []
        for k in range(self.members):
            rows = rng.integers(0, len(y), len(y)) if self.members > 1 else np.arange(len(y))
            model = HistGradientBoostingRegressor(
                max_iter=self.rounds,
                learning_rate=0.1,
                max_leaf_nodes=15,
                min_samples_leaf=min(10, max(1, len(y) // 10)),
                l2_regularization=1.0,
                early_stopping=False,
                random_state=self.seed + k,
            )
            self.models_.append(model.fit(X[rows], y[rows]))
        return self

    def predict_spread(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        preds = np.array([m.predict(X) for m in self.models_])
        return preds.mean(axis=0), preds.std(axis=0)


class EnsembleLinear:
    """One ridge model per binding ensemble (the element counts of the binding atoms), on the
    other features; ensembles with fewer than ``ENSEMBLE_MIN_ROWS`` training rows, and unseen
    ones, use a ridge model of all rows.  Raw spread: the training residuals' standard
    deviation of the model that predicts the row."""

    def __init__(self, ensemble_columns: list[int]):
        self.ensemble_columns = list(ensemble_columns)
        self.models_: dict[tuple, tuple] = {}
        self.fallback_: tuple | None = None

    @staticmethod
    def _ridge(X: np.ndarray, y: np.ndarray) -> tuple:
        from sklearn.linear_model import RidgeCV
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        model = make_pipeline(StandardScaler(), RidgeCV(alphas=np.logspace(-3, 3, 13)))
        model.fit(X, y)
        residual = float(np.std(y - model.predict(X))) if len(y) > 1 else 0.0
        return model, residual

    def _keys(self, X: np.ndarray) -> list[tuple]:
        return [tuple(row) for row in np.round(X[:, self.ensemble_columns], 6)]

    def fit(self, X: np.ndarray, y: np.ndarray) -> EnsembleLinear:
        keys = self._keys(X)
        self.fallback_ = self._ridge(X, y)
        groups: dict[tuple, list[int]] = {}
        for i, key in enumerate(keys):
            groups.setdefault(key, []).append(i)
        self.models_ = {
            key: self._ridge(X[rows], y[rows])
            for key, rows in groups.items()
            if len(rows) >= ENSEMBLE_MIN_ROWS
        }
        return self

    def predict_spread(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        mean, spread = np.zeros(len(X)), np.zeros(len(X))
        rows: dict[tuple, list[int]] = {}
        for i, key in enumerate(self._keys(X)):
            rows.setdefault(key if key in self.models_ else None, []).append(i)
        for key, index in rows.items():
            model, residual = self.models_[key] if key is not None else self.fallback_
            mean[index] = model.predict(X[index])
            spread[index] = residual
        return mean, spread


class BaggedKernelRidge:
    """Ridge regression on a Nystroem approximation of an RBF kernel (scikit-learn's
    StandardScaler, Nystroem and Ridge) on bootstrap replicas of the rows: their mean is the
    prediction, their standard deviation the raw spread.

    The kernel's width scales with the number of features that vary, so that one setting serves
    feature sets of different sizes; features are standardised on the training rows.
    """

    def __init__(self, members: int = KERNEL_MEMBERS, seed: int = 0):
        self.members, self.seed = members, seed
        self.scaler_ = None
        self.models_: list = []
        self.offset_ = 0.0

    def fit(self, X: np.ndarray, y: np.ndarray) -> BaggedKernelRidge:
        from sklearn.kernel_approximation import Nystroem
        from sklearn.linear_model import Ridge
        from sklearn.preprocessing import StandardScaler

        self.scaler_ = StandardScaler().fit(X)
        Z = self.scaler_.transform(X)
        varying = int(np.count_nonzero(self.scaler_.var_ > 0))
        gamma = KERNEL_GAMMA / max(varying, 1)
        self.offset_ = float(np.mean(y))
        rng = np.random.default_rng(self.seed)
        self.models_ = []
        for k in range(self.members):
            rows = rng.integers(0, len(y), len(y)) if self.members > 1 else np.arange(len(y))
            landmarks = Nystroem(
                kernel="rbf",
                gamma=gamma,
                n_components=min(KERNEL_COMPONENTS, len(rows)),
                random_state=self.seed + k,
            ).fit(Z[rows])
            ridge = Ridge(alpha=KERNEL_ALPHA).fit(
                landmarks.transform(Z[rows]), y[rows] - self.offset_
            )
            self.models_.append((landmarks, ridge))
        return self

    def predict_spread(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        Z = self.scaler_.transform(X)
        preds = np.array([r.predict(n.transform(Z)) for n, r in self.models_]) + self.offset_
        return preds.mean(axis=0), preds.std(axis=0)


class Blend:
    """The mean of several regressors; raw spread: their spreads and their disagreement,
    sqrt(mean of spread^2 + variance of the means)."""

    def __init__(self, parts: list):
        self.parts = parts

    def fit(self, X: np.ndarray, y: np.ndarray) -> Blend:
        for part in self.parts:
            part.fit(X, y)
        return self

    def predict_spread(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return _blend([_predict_spread(part, X) for part in self.parts])


def _blend(outputs: Sequence[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    means = np.array([m for m, _ in outputs])
    spreads = np.array([s for _, s in outputs])
    return means.mean(axis=0), np.sqrt((spreads**2).mean(axis=0) + means.var(axis=0))


def _make_regressor(
    name: str,
    n_estimators: int,
    seed: int,
    min_samples_leaf: int = 1,
    feature_names: Sequence[str] = (),
):
    from sklearn.ensemble import ExtraTreesRegressor, RandomForestRegressor

    if name in BLENDS:
        return Blend(
            [
                _make_regressor(part, n_estimators, seed, min_samples_leaf, feature_names)
                for part in BLENDS[name]
            ]
        )
    if name == "boosting":
        return BaggedBoosting(seed=seed)
    if name == "kernel":
        return BaggedKernelRidge(seed=seed)
    if name == "ensemble-linear":
        # the binding zone's element counts (binding_Pt), not its bonds (binding_ring_Pt-Ru)
        columns = [k for k, f in enumerate(feature_names) if _BINDING_COUNT.fullmatch(f)]
        if not columns or not any(f == "binding_ref_mean" for f in feature_names):
            raise InputError("the ensemble-linear model needs the zones feature set")
        return EnsembleLinear(columns)

    if name == "extratrees":
        return ExtraTreesRegressor(
            n_estimators=n_estimators,
            min_samples_leaf=min_samples_leaf,
            max_features=1.0,
            random_state=seed,
            n_jobs=1,
        )
    if name == "randomforest":
        return RandomForestRegressor(
            n_estimators=n_estimators,
            min_samples_leaf=min_samples_leaf,
            max_features=0.5,
            random_state=seed,
            n_jobs=1,
        )
    if name == "gp":
        from sklearn.gaussian_process import GaussianProcessRegressor
        from sklearn.gaussian_process.kernels import RBF, ConstantKernel, WhiteKernel
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        kernel = ConstantKernel(1.0, (1e-2, 1e2)) * RBF(3.0, (1e-1, 1e3)) + WhiteKernel(
            0.1, (1e-5, 1.0)
        )
        gp = GaussianProcessRegressor(kernel, normalize_y=True, random_state=seed)
        return make_pipeline(StandardScaler(), gp)
    raise InputError(f"unknown model '{name}' (choose from {', '.join(CANDIDATES)})")


def _predict_spread(regressor, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and raw spread: per-tree std for forests, per-replica std for boosting, the
    training residuals' std for ensemble-linear, predictive std for the GP."""
    if hasattr(regressor, "predict_spread"):
        return regressor.predict_spread(X)
    if hasattr(regressor, "estimators_"):
        trees = regressor.estimators_
        mean = np.zeros(len(X))
        sq = np.zeros(len(X))
        X32 = np.ascontiguousarray(X, dtype=np.float32)  # what sklearn trees predict on
        for tree in trees:
            p = tree.tree_.predict(X32).reshape(len(X32), -1)[
                :, 0
            ]  # low level: no per-call validation
            mean += p
            sq += p * p
        mean /= len(trees)
        var = np.maximum(sq / len(trees) - mean * mean, 0.0)
        return mean, np.sqrt(var)
    mean, std = regressor.predict(X, return_std=True)
    return np.asarray(mean, dtype=float), np.asarray(std, dtype=float)


def _unique_rows(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct rows of a float array and the inverse index (rows compared bytewise)."""
    if len(X) <= 256:
        return X, np.arange(len(X))
    X = X + 0.0  # -0.0 -> 0.0 so that equal values have equal bytes
    view = X.view(np.dtype((np.void, X.dtype.itemsize * X.shape[1]))).reshape(-1)
    _, first, inverse = np.unique(view, return_index=True, return_inverse=True)
    return X[first], inverse.reshape(-1)


def _conformal_scale(residuals: np.ndarray, sigma: np.ndarray, coverage: float = 0.9) -> float:
    """Factor s such that |r| <= Z90 * s * sigma for a ``coverage`` share (finite-sample rank)."""
    ratio = np.abs(residuals) / sigma
    n = len(ratio)
    rank = min(n, math.ceil((n + 1) * coverage))
    q = np.sort(ratio)[rank - 1]
    return float(q / Z90) if q > 0 else 1.0


def _calibrate(residuals: np.ndarray, spread: np.ndarray) -> tuple[float, float]:
    """(floor, scale) giving the narrowest conformal 90% intervals on out-of-fold rows."""
    mae = float(np.mean(np.abs(residuals))) or 1e-3
    best = None
    for fraction in FLOOR_FRACTIONS:
        floor = fraction * mae
        sigma = np.sqrt(spread**2 + floor**2)
        scale = _conformal_scale(residuals, sigma)
        width = scale * float(np.mean(sigma))
        if best is None or width < best[0] - 1e-12:
            best = (width, floor, scale)
    return best[1], best[2]


# -- the surrogate -----------------------------------------------------------------------------
@dataclass
class Surrogate:
    """Regressor + featurizer + calibration for one adsorbate.

    ``model`` fixes the regressor (no selection); ``candidates`` limits the selection;
    ``n_estimators`` trees per forest; ``inner_folds`` grouped folds for selection and calibration.
    ``Surrogate(ads, model="extratrees", n_estimators=60)`` is the cheap mode for backtests.

    After :meth:`fit`, ``info["cv"]`` describes the inner grouped CV of the chosen regressor: it
    is also the calibration set, so its ``coverage90`` is ~0.9 by construction; an honest
    estimate of both error and coverage is :func:`evaluate` (CV around the whole fit).
    """

    adsorbate: str
    feature_set: str = DEFAULT_FEATURE_SET
    model: str | None = None
    candidates: tuple[str, ...] = CANDIDATES
    n_estimators: int = 150
    inner_folds: int = 3
    inner_estimators: int | None = 50
    min_samples_leaf: int = 1
    gp_max_rows: int = 600
    forest_max_rows: int = 2000
    featurizer: Featurizer | None = field(default=None, repr=False)
    regressor: object = field(default=None, repr=False)
    scale: float = 1.0
    floor: float = 0.0
    info: dict = field(default_factory=dict)

    def _candidate_names(self, n: int) -> list[str]:
        if self.model is not None:
            if self.model not in CANDIDATES:
                raise InputError(
                    f"unknown model '{self.model}' (choose from {', '.join(CANDIDATES)})"
                )
            return [self.model]
        names = [
            c
            for c in self.candidates
            if (c != "gp" or n <= self.gp_max_rows)
            and (c not in FORESTS or n <= self.forest_max_rows)
            and ("boosting" not in BLENDS.get(c, (c,)) or n >= BOOSTING_MIN_ROWS)
            and (c != "ensemble-linear" or self.feature_set.startswith("zones"))
        ]
        for c in names:
            if c not in CANDIDATES:
                raise InputError(f"unknown model '{c}' (choose from {', '.join(CANDIDATES)})")
        return names or ["extratrees"]

    def _featurize(self, fps, energies, pure) -> tuple[Featurizer, np.ndarray]:
        featurizer = Featurizer(self.adsorbate, self.feature_set).fit(fps, energies, pure)
        return featurizer, featurizer.transform(fps)

    def _regress(self, name, X, energies, seed: int, n_estimators: int | None = None, names=()):
        n_trees = n_estimators or self.n_estimators
        regressor = _make_regressor(name, n_trees, seed, self.min_samples_leaf, names)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # GP kernel-bound notices
            regressor.fit(X, energies)
        return regressor

    def fit(
        self,
        fingerprints: Sequence[dict],
        energies,
        groups: Sequence[str],
        pure: Sequence[str | None],
        *,
        seed: int = 0,
    ) -> Surrogate:
        start = time.perf_counter()
        energies = np.asarray(energies, dtype=float)
        n = len(energies)
        if not (len(fingerprints) == len(groups) == len(pure) == n):
            raise ValueError("fingerprints, energies, groups and pure must have the same length")
        if n < 2:
            raise InputError(f"need at least 2 labelled {self.adsorbate} rows to fit (got {n})")
        if not np.isfinite(energies).all():
            raise InputError("energies must be finite")
        fps = list(fingerprints)
        pure = list(pure)
        self.feature_set = best_feature_set(fps, self.feature_set)
        garr = np.asarray([str(g) for g in groups], dtype=object)
        names = self._candidate_names(n)
        folds = _inner_splits(garr, self.inner_folds, seed)
        inner_trees = min(self.inner_estimators or self.n_estimators, self.n_estimators)
        # a blend's parts are fitted once and shared with the parts' own candidacy
        fitted = list(dict.fromkeys(p for name in names for p in BLENDS.get(name, (name,))))
        oof = {name: (np.zeros(n), np.zeros(n)) for name in fitted}
        for train, test in folds:
            featurizer, X_train = self._featurize(
                [fps[i] for i in train], energies[train], [pure[i] for i in train]
            )
            X_test = featurizer.transform([fps[i] for i in test])
            for name in fitted:
                regressor = self._regress(
                    name, X_train, energies[train], seed, inner_trees, featurizer.feature_names
                )
                mean, spread = _predict_spread(regressor, X_test)
                oof[name][0][test] = mean
                oof[name][1][test] = spread
        for name in names:
            if name in BLENDS:
                oof[name] = _blend([oof[part] for part in BLENDS[name]])
        maes = {name: float(np.mean(np.abs(oof[name][0] - energies))) for name in names}
        chosen = min(names, key=lambda k: (maes[k], names.index(k)))
        residuals = energies - oof[chosen][0]
        self.floor, self.scale = _calibrate(residuals, oof[chosen][1])
        if n < MIN_ROWS:  # too few rows to calibrate on: at least the spread of the labels
            self.floor = max(self.floor, float(np.std(energies)), SMALL_N_FLOOR)
            self.scale = max(self.scale, 1.0)
        sigma_oof = self.scale * np.sqrt(oof[chosen][1] ** 2 + self.floor**2)
        self.featurizer, X = self._featurize(fps, energies, pure)
        self.regressor = self._regress(
            chosen, X, energies, seed, names=self.featurizer.feature_names
        )
        self.info = {
            "adsorbate": self.adsorbate,
            "n": n,
            "groups": int(len(set(garr.tolist()))),
            "model": chosen,
            "feature_set": self.feature_set,
            "n_estimators": self.n_estimators,
            "inner_estimators": inner_trees,
            "min_samples_leaf": self.min_samples_leaf,
            "cv": {
                "mae": maes[chosen],
                "rmse": float(np.sqrt(np.mean(residuals**2))),
                "coverage90": float(np.mean(np.abs(residuals) <= Z90 * sigma_oof)),
                "n_folds": len(folds),
                "grouped": len(set(garr.tolist())) >= 2,
            },
            "scale": self.scale,
            "floor": self.floor,
            "references": dict(self.featurizer.references),
            "reference_sources": dict(self.featurizer.reference_sources),
            "candidates": maes,
            "seed": seed,
            "fit_s": round(time.perf_counter() - start, 3),
        }
        return self

    # -- prediction ----------------------------------------------------------------------------
    def features(self, fingerprints: Sequence[dict]) -> np.ndarray:
        if self.featurizer is None:
            raise RuntimeError("Surrogate used before fit()")
        return self.featurizer.transform(fingerprints)

    def predict(self, fingerprints: Sequence[dict] | None = None, *, X=None):
        """(mean, calibrated std) in eV; pass ``X`` (from :meth:`features`) to skip featurising.

        Distinct fingerprints (or distinct feature rows) are predicted once, in chunks: many
        sites share a fingerprint.
        """
        if self.regressor is None or self.featurizer is None:
            raise RuntimeError("Surrogate used before fit()")
        if X is None:
            if fingerprints is None:
                raise ValueError("predict needs fingerprints or X")
            table, inverse = self.featurizer.transform_distinct(fingerprints)
        else:
            X = np.ascontiguousarray(X, dtype=float)
            if X.ndim != 2:
                raise ValueError("X must be 2-D (n, n_features)")
            table, inverse = _unique_rows(X)
        mean = np.empty(len(table))
        spread = np.empty(len(table))
        for lo in range(0, len(table), PREDICT_CHUNK):
            hi = lo + PREDICT_CHUNK
            mean[lo:hi], spread[lo:hi] = _predict_spread(self.regressor, table[lo:hi])
        std = self.scale * np.sqrt(spread**2 + self.floor**2)
        return mean[inverse], std[inverse]

    # -- persistence ---------------------------------------------------------------------------
    def dumps(self) -> bytes:
        buffer = io.BytesIO()
        pickle.dump(self, buffer, protocol=pickle.HIGHEST_PROTOCOL)
        return buffer.getvalue()

    @staticmethod
    def loads(b: bytes) -> Surrogate:
        out = pickle.loads(b)
        if not isinstance(out, Surrogate):
            raise InputError("not a pickled Surrogate")
        return out


# -- evaluation --------------------------------------------------------------------------------
def _single_adsorbate(data) -> str:
    kinds = sorted(set(data.adsorbates))
    if len(kinds) != 1:
        raise InputError(
            f"data holds several adsorbates ({', '.join(kinds)}); select one (LabelledSet.select)"
        )
    return kinds[0]


def _check_cv(data, folds: int) -> None:
    if len(data) < MIN_ROWS:
        raise InputError(f"cross-validation needs at least {MIN_ROWS} rows (got {len(data)})")
    n_groups = len(set(data.groups))
    if n_groups < 2:
        raise InputError(f"cross-validation needs at least 2 groups (slabs); got {n_groups}")
    if folds < 2:
        raise InputError(f"folds must be >= 2 (got {folds})")


class Metrics(TypedDict):
    """Errors of predictions against labels (eV)."""

    mae: float
    rmse: float
    mdae: float  # median absolute error


class OutOfFold(TypedDict):
    mean: np.ndarray  # the held-out predictions, in the data's row order
    std: np.ndarray


class _WithOutOfFold(TypedDict, total=False):
    out_of_fold: OutOfFold  # only when asked for


class CVReport(Metrics, _WithOutOfFold):
    """Grouped K-fold CV of the whole surrogate fit (:func:`evaluate`)."""

    coverage90: float  # share of held-out rows inside mean +/- 1.645 std
    n: int
    folds: int
    model: str  # the model chosen most often
    fold_models: list[str]  # the model chosen in each fold
    adsorbate: str
    feature_set: str
    reference: str | None  # the state the energies are relative to; None: the gas references


class BaselineReport(Metrics):
    """Grouped K-fold CV of the plain forest on shell element counts (:func:`baseline_evaluate`)."""

    n: int
    folds: int
    model: str


def _metrics(y: np.ndarray, mean: np.ndarray) -> Metrics:
    err = mean - y
    return Metrics(
        mae=float(np.mean(np.abs(err))),
        rmse=float(np.sqrt(np.mean(err**2))),
        mdae=float(np.median(np.abs(err))),
    )


def evaluate(
    data,
    *,
    folds: int = 5,
    seed: int = 0,
    model: str | None = None,
    feature_set: str = DEFAULT_FEATURE_SET,
    n_estimators: int = 150,
    candidates: tuple[str, ...] = CANDIDATES,
    out_of_fold: bool = False,
    on_fold: Callable[[int, int], None] | None = None,
) -> CVReport:
    """Grouped K-fold CV of the whole :meth:`Surrogate.fit` (selection, references, calibration
    all fitted on each outer training part only).

    With ``out_of_fold``, the report also holds the held-out predictions.  ``on_fold(done,
    folds)`` is called after each fold (``folds`` may be fewer than asked: at most one per group).
    """
    adsorbate = _single_adsorbate(data)
    _check_cv(data, folds)
    reference = data.reference  # InputError for rows on different scales
    feature_set = best_feature_set(data.fingerprints, feature_set)
    y = np.asarray(data.energies, dtype=float)
    mean = np.zeros(len(y))
    std = np.zeros(len(y))
    chosen = []
    splits = grouped_folds(data.groups, folds, seed)
    for train, test in splits:
        sub = data.take(train)
        s = Surrogate(
            adsorbate, feature_set=feature_set, model=model, n_estimators=n_estimators,
            candidates=candidates,
        )  # fmt: skip
        s.fit(sub.fingerprints, sub.energies, sub.groups, sub.pure, seed=seed)
        mean[test], std[test] = s.predict([data.fingerprints[i] for i in test])
        chosen.append(s.info["model"])
        if on_fold is not None:
            on_fold(len(chosen), len(splits))
    out = CVReport(
        **_metrics(y, mean),
        coverage90=float(np.mean(np.abs(y - mean) <= Z90 * std)),
        n=len(y),
        folds=len(splits),
        model=Counter(chosen).most_common(1)[0][0],
        fold_models=chosen,
        adsorbate=adsorbate,
        feature_set=feature_set,
        reference=reference,
    )
    if out_of_fold:
        out["out_of_fold"] = OutOfFold(mean=mean, std=std)
    return out


def baseline_evaluate(
    data, *, folds: int = 5, seed: int = 0, on_fold: Callable[[int, int], None] | None = None
) -> BaselineReport:
    """A plain RandomForestRegressor (100 trees) on per-shell element counts, same grouped folds
    (``on_fold`` as in :func:`evaluate`)."""
    from sklearn.ensemble import RandomForestRegressor

    _check_cv(data, folds)
    y = np.asarray(data.energies, dtype=float)
    X, _ = element_counts(data.fingerprints)
    mean = np.zeros(len(y))
    splits = grouped_folds(data.groups, folds, seed)
    for done, (train, test) in enumerate(splits, 1):
        rf = RandomForestRegressor(n_estimators=100, random_state=seed, n_jobs=1)
        rf.fit(X[train], y[train])
        mean[test] = rf.predict(X[test])
        if on_fold is not None:
            on_fold(done, len(splits))
    return BaselineReport(
        **_metrics(y, mean), n=len(y), folds=len(splits), model="randomforest-counts"
    )
