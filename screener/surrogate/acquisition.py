"""Acquisition: which unlabelled sites to calculate next, and the modAL learner that asks.

Every strategy turns the surrogate's (mean, std) into a score, higher = calculate first:

``target-window`` (default)
    P(target - window < dE < target + window) under N(mean, std): the chance the site is a hit.
``gaussian-target``
    Tran & Ulissi (2018): weights exp(-(mean - target)^2 / (2 sigma^2)), no uncertainty; sites are
    drawn at random in proportion to weight (without replacement, via Gumbel-top-k: score =
    log weight + Gumbel noise, so taking the top scores *is* the weighted draw).
``ei``
    expected improvement of closeness c = -|dE - target| over ``best`` (the best closeness
    labelled so far, <= 0), under dE ~ N(mean, std).  With d = -best the improvement is
    max(0, d - |dE - target|); integrating the normal density over |x| < d gives the closed form
    in :func:`expected_closeness_improvement`.  Without ``best`` (nothing labelled) d = window.
``ucb``
    optimistic closeness: -|mean - target| + beta * std (beta = 1).
``max-std``
    largest std (pure exploration).
``random``
    uniform.

Ties (e.g. probabilities that underflow to 0 far from the window) are broken by closeness of the
mean to the target.  :func:`select_batch` spreads a batch over surfaces round-robin.

:func:`make_learner` builds a :class:`modAL.models.ActiveLearner` whose estimator is a
:class:`PoolRegressor` (X = integer row indices into a pool of fingerprints, so the surrogate can
refit its references on the labelled rows) and whose query strategy is :func:`pool_query`; the
backtest drives it with ``learner.query`` / ``learner.teach``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from modAL.models import ActiveLearner
from scipy.special import ndtr
from scipy.stats import norm
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils import check_X_y

from screener.errors import InputError

STRATEGIES = ("target-window", "gaussian-target", "ei", "ucb", "max-std", "random")
DEFAULT_TARGETS = {"CO": -0.67, "H": -0.27}
DEFAULT_WINDOW = 0.1
DEFAULT_SIGMA = 0.33
DEFAULT_BETA = 1.0
_TINY = 1e-12


def _check_strategy(strategy: str) -> None:
    if strategy not in STRATEGIES:
        raise InputError(f"unknown strategy '{strategy}' (choose from {', '.join(STRATEGIES)})")


def window_probability(mean, std, lo: float, hi: float) -> np.ndarray:
    """P(lo < X < hi) for X ~ N(mean, std), accurate in both tails; std 0 -> indicator."""
    mean = np.asarray(mean, dtype=float)
    std = np.maximum(np.asarray(std, dtype=float), _TINY)
    a = (lo - mean) / std
    b = (hi - mean) / std
    # both bounds above the mean: use the mirrored (upper-tail) form to avoid 1 - 1
    flip = a > 0
    a2 = np.where(flip, -b, a)
    b2 = np.where(flip, -a, b)
    return np.clip(ndtr(b2) - ndtr(a2), 0.0, 1.0)


def expected_closeness_improvement(mean, std, target: float, d) -> np.ndarray:
    """E[max(0, d - |X - target|)] for X ~ N(mean, std): EI of closeness over best = -d.

    With m = mean - target and the truncated moments of a normal on [a, b]
    (P = Phi(beta) - Phi(alpha), E[x; a<x<b] = m P + s (phi(alpha) - phi(beta))):
    EI = integral over [0, d] of (d - x) f + integral over [-d, 0] of (d + x) f.
    """
    m = np.asarray(mean, dtype=float) - target
    s = np.maximum(np.asarray(std, dtype=float), _TINY)
    d = np.maximum(np.asarray(d, dtype=float), 0.0)

    def part(a, b):
        alpha, beta = (a - m) / s, (b - m) / s
        p = ndtr(beta) - ndtr(alpha)
        first = m * p + s * (norm.pdf(alpha) - norm.pdf(beta))  # E[x; a < x < b]
        return p, first

    p_pos, x_pos = part(0.0, d)
    p_neg, x_neg = part(-d, 0.0)
    return np.maximum(d * p_pos - x_pos + d * p_neg + x_neg, 0.0)


def scores(
    strategy: str,
    mean,
    std,
    *,
    target: float,
    window: float,
    best: float | None = None,
    sigma: float = DEFAULT_SIGMA,
    rng=None,
    beta: float = DEFAULT_BETA,
) -> np.ndarray:
    """Score per site, higher = pick first (see the module docstring for each strategy)."""
    _check_strategy(strategy)
    mean = np.asarray(mean, dtype=float).reshape(-1)
    std = np.asarray(std, dtype=float).reshape(-1)
    if mean.shape != std.shape:
        raise ValueError("mean and std must have the same length")
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    if strategy == "target-window":
        return window_probability(mean, std, target - window, target + window)
    if strategy == "gaussian-target":
        log_weight = -((mean - target) ** 2) / (2 * sigma**2)
        return log_weight + rng.gumbel(size=len(mean))
    if strategy == "ei":
        d = window if best is None else -min(float(best), 0.0)
        return expected_closeness_improvement(mean, std, target, d)
    if strategy == "ucb":
        return -np.abs(mean - target) + beta * std
    if strategy == "max-std":
        return std.copy()
    return rng.random(len(mean))


def _exclude_mask(exclude, n: int) -> np.ndarray:
    mask = np.zeros(n, dtype=bool)
    if exclude is None:
        return mask
    exclude = np.asarray(exclude)
    if exclude.dtype == bool:
        if exclude.shape != (n,):
            raise ValueError(f"boolean exclude must have length {n}")
        return exclude.copy()
    if exclude.size:
        mask[exclude.astype(int).reshape(-1)] = True
    return mask


def select_batch(
    strategy: str,
    mean,
    std,
    surfaces: Sequence[str],
    n: int,
    *,
    target: float,
    window: float,
    exclude: np.ndarray | None = None,
    seed: int = 0,
    best: float | None = None,
    sigma: float = DEFAULT_SIGMA,
    beta: float = DEFAULT_BETA,
    spread: bool = True,
) -> np.ndarray:
    """Indices into the pool of at most ``n`` sites to calculate next, spread over surfaces.

    Excluded sites (indices or a boolean mask) are skipped.  Round-robin over surfaces: the best
    site of each surface in order of score, then each surface's second best, and so on
    (``spread=False``: simply the ``n`` best scores).
    """
    _check_strategy(strategy)
    if int(n) < 1:
        raise InputError(f"batch size must be >= 1 (got {n})")
    mean = np.asarray(mean, dtype=float).reshape(-1)
    std = np.asarray(std, dtype=float).reshape(-1)
    if len(surfaces) != len(mean):
        raise ValueError("surfaces must have one entry per pool site")
    rng = np.random.default_rng(seed)
    score = scores(
        strategy, mean, std, target=target, window=window, best=best, sigma=sigma, rng=rng,
        beta=beta,
    )  # fmt: skip
    return _round_robin(
        score, mean, surfaces, int(n), target=target, exclude=exclude, spread=spread
    )


def _round_robin(
    score, mean, surfaces, n: int, *, target: float, exclude=None, spread: bool = True
) -> np.ndarray:
    keep = np.nonzero(~_exclude_mask(exclude, len(mean)))[0]
    if len(keep) == 0:
        return np.zeros(0, dtype=int)
    closeness = np.abs(mean[keep] - target)
    order = keep[np.lexsort((closeness, -score[keep]))]  # by score, then closeness
    if not spread:
        return order[:n].astype(int)
    _, surface_id = np.unique(np.asarray(surfaces, dtype=object)[order], return_inverse=True)
    surface_id = surface_id.reshape(-1)
    # rank of each site within its surface, in score order
    rank = np.empty(len(order), dtype=int)
    seen: dict[int, int] = {}
    for k, sid in enumerate(surface_id):
        rank[k] = seen.get(sid, 0)
        seen[sid] = rank[k] + 1
    return order[np.argsort(rank, kind="stable")][:n].astype(int)


# -- modAL ---------------------------------------------------------------------------------------
class PoolRegressor(BaseEstimator, RegressorMixin):
    """scikit-learn regressor over a fixed pool: X is a column of integer row indices.

    ``fit`` records the labelled pool rows named by X; a fresh copy of ``surrogate`` (a
    :class:`~screener.surrogate.models.Surrogate`) is fitted on them at the first ``predict``
    after it, which predicts the whole pool once; ``predict(X, return_std=True)`` gives
    (mean, std) of the rows named by X.
    """

    def __init__(self, surrogate=None, fingerprints=None, groups=None, pure=None, seed: int = 0):
        self.surrogate = surrogate
        self.fingerprints = fingerprints
        self.groups = groups
        self.pure = pure
        self.seed = seed

    @staticmethod
    def _rows(X) -> np.ndarray:
        return np.asarray(X).reshape(len(X), -1)[:, 0].astype(int)

    def fit(self, X, y):
        """Store the labelled rows; the surrogate is fitted on first use (lazy: a strategy that
        never predicts, like ``random``, costs nothing per round)."""
        self.rows_ = self._rows(X)
        self.y_ = np.asarray(y, dtype=float).reshape(-1)
        self.model_ = None
        self._pool_pred = None
        return self

    def fitted_model(self):
        """The surrogate fitted on the stored rows (fitting it now if needed)."""
        import copy

        if getattr(self, "model_", None) is None:
            model = copy.deepcopy(self.surrogate)
            pure = self.pure if self.pure is not None else [None] * len(self.fingerprints)
            model.fit(
                [self.fingerprints[i] for i in self.rows_],
                self.y_,
                [str(self.groups[i]) for i in self.rows_],
                [pure[i] for i in self.rows_],
                seed=self.seed,
            )
            self.model_ = model
        return self.model_

    def predict(self, X, return_std: bool = False):
        rows = self._rows(X)
        if getattr(self, "_pool_pred", None) is None:  # the whole pool, once per fit
            self._pool_pred = self.fitted_model().predict(self.fingerprints)
        mean, std = self._pool_pred[0][rows], self._pool_pred[1][rows]
        return (mean, std) if return_std else mean


def predict_mean_std(estimator, X) -> tuple[np.ndarray, np.ndarray]:
    """(mean, std) from any regressor: return_std if it has it, per-tree spread for forests."""
    try:
        mean, std = estimator.predict(X, return_std=True)
        return np.asarray(mean, dtype=float), np.asarray(std, dtype=float)
    except TypeError:
        pass
    if hasattr(estimator, "estimators_"):
        per_tree = np.stack([t.predict(np.asarray(X)) for t in estimator.estimators_])
        return per_tree.mean(axis=0), per_tree.std(axis=0)
    mean = np.asarray(estimator.predict(X), dtype=float)
    return mean, np.zeros(len(mean))


def pool_query(
    learner,
    X_pool,
    n_instances: int = 1,
    *,
    strategy: str = "target-window",
    target: float,
    window: float = DEFAULT_WINDOW,
    surfaces: Sequence[str] | None = None,
    exclude: np.ndarray | None = None,
    seed: int = 0,
    sigma: float = DEFAULT_SIGMA,
    beta: float = DEFAULT_BETA,
    spread: bool = True,
):
    """modAL query strategy: (indices into X_pool, their scores).

    ``best`` for EI is the closeness of the best labelled row (``learner.y_training``).  Returns
    a tuple so that modAL's ``query`` unpacks it as (result, metrics).
    """
    if len(X_pool) == 0:
        return np.zeros(0, dtype=int), np.zeros(0)
    if strategy == "random":  # needs no model: do not make a lazy estimator fit
        mean = np.zeros(len(X_pool))
        std = np.zeros(len(X_pool))
    else:
        mean, std = predict_mean_std(learner.estimator, X_pool)
    best = None
    if learner.y_training is not None and len(learner.y_training):
        best = -float(np.min(np.abs(np.asarray(learner.y_training, dtype=float) - target)))
    if surfaces is None:
        surfaces = [str(i) for i in range(len(mean))]
    _check_strategy(strategy)
    if int(n_instances) < 1:
        raise InputError(f"batch size must be >= 1 (got {n_instances})")
    if len(surfaces) != len(mean):
        raise ValueError("surfaces must have one entry per pool site")
    score = scores(
        strategy, mean, std, target=target, window=window, best=best, sigma=sigma,
        rng=np.random.default_rng(seed), beta=beta,
    )  # fmt: skip
    picked = _round_robin(
        score, mean, surfaces, int(n_instances), target=target, exclude=exclude, spread=spread
    )
    return picked, score[picked]


class _Learner(ActiveLearner):
    """ActiveLearner whose data checks use scikit-learn's current keyword (ensure_all_finite).

    modAL 0.4.2.1 passes ``force_all_finite``, deprecated in scikit-learn 1.6 and gone in 1.8.
    """

    def _check(self, X, y) -> None:
        check_X_y(
            X, y, accept_sparse=True, ensure_2d=False, allow_nd=True, multi_output=True,
            dtype=None, ensure_all_finite=self.force_all_finite,
        )  # fmt: skip

    def _add_training_data(self, X, y) -> None:
        from modAL.utils.data import data_vstack

        self._check(X, y)
        if self.X_training is None:
            self.X_training, self.y_training = X, y
        else:
            self.X_training = data_vstack((self.X_training, X))
            self.y_training = data_vstack((self.y_training, y))

    def fit(self, X, y, bootstrap: bool = False, **fit_kwargs):
        self._check(X, y)
        self.X_training, self.y_training = X, y
        return self._fit_to_known(bootstrap=bootstrap, **fit_kwargs)


def make_learner(
    surrogate_or_estimator,
    strategy: str = "target-window",
    *,
    fingerprints: Sequence[dict] | None = None,
    groups: Sequence[str] | None = None,
    pure: Sequence[str | None] | None = None,
    X_training=None,
    y_training=None,
    seed: int = 0,
) -> ActiveLearner:
    """A modAL ActiveLearner with our strategy as its query strategy.

    A :class:`Surrogate` is wrapped in a :class:`PoolRegressor` over ``fingerprints`` / ``groups``
    / ``pure`` (then X = pool row indices, shape (n, 1)); any other scikit-learn regressor is used
    as is (std from ``return_std`` or per-tree spread).  ``learner.query(X_pool, n_instances=...,
    target=..., window=..., surfaces=..., exclude=..., seed=...)`` returns (indices, rows) and
    ``learner.teach(X, y)`` adds labels and refits.
    """
    from functools import partial

    from screener.surrogate.models import Surrogate

    _check_strategy(strategy)
    estimator = surrogate_or_estimator
    if isinstance(surrogate_or_estimator, Surrogate):
        if fingerprints is None or groups is None:
            raise ValueError("a Surrogate needs the pool's fingerprints and groups")
        estimator = PoolRegressor(
            surrogate_or_estimator, list(fingerprints), list(groups), pure, seed
        )
    return _Learner(
        estimator=estimator,
        query_strategy=partial(pool_query, strategy=strategy),
        X_training=X_training,
        y_training=y_training,
    )
