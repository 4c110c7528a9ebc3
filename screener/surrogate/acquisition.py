"""Acquisition: which unlabelled sites to calculate next -- one proposer, on modAL.

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
mean to the target.

The one path both the loop (:func:`screener.learning.select`) and the backtest
(:mod:`screener.surrogate.backtest`) pick sites by:

* :func:`make_learner` builds a modAL :class:`ActiveLearner` whose estimator predicts (mean, std)
  for pool rows (X = a column of integer pool indices) and whose query strategy is one of
  :data:`QUERY_STRATEGIES`, modAL query strategies ``(learner, X_pool, n_instances, **kw) ->
  (indices, scores)``;
* the estimator is :class:`StoredPredictions` (the loop: predictions a trained model stored, read,
  never refitted, so a selection over a million sites costs what reading them does) or
  :class:`PoolRegressor` (the backtest: a :class:`~screener.surrogate.models.Surrogate` refitted
  on the labelled rows by ``learner.teach``);
* :func:`propose` asks the learner for a :class:`BatchRequest` and returns a :class:`Proposal`:
  the batch is spread over surfaces round-robin (:func:`spread_over_surfaces`) and skips the
  excluded (labelled, queued) sites.
"""

from __future__ import annotations

import copy
import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from modAL.models import ActiveLearner as _ModalActiveLearner
from modAL.utils.data import data_vstack
from scipy.special import ndtr
from scipy.stats import norm
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils import check_X_y

from screener.errors import InputError
from screener.surrogate.strategies import check_strategy

DEFAULT_WINDOW = 0.1
DEFAULT_SIGMA = 0.33
DEFAULT_BETA = 1.0
_TINY = 1e-12


# -- scores --------------------------------------------------------------------------------------
def window_probability(mean: Any, std: Any, lo: float, hi: float) -> np.ndarray:
    """P(lo < X < hi) for X ~ N(mean, std), accurate in both tails.

    Parameters
    ----------
    mean, std : array_like
        Per site; a std of 0 makes the probability an indicator of lo < mean < hi.
    lo, hi : float
        The window.

    Returns
    -------
    numpy.ndarray
        Probabilities in [0, 1].
    """
    mean = np.asarray(mean, dtype=float)
    std = np.maximum(np.asarray(std, dtype=float), _TINY)
    a = (lo - mean) / std
    b = (hi - mean) / std
    # both bounds above the mean: use the mirrored (upper-tail) form to avoid 1 - 1
    flip = a > 0
    a2 = np.where(flip, -b, a)
    b2 = np.where(flip, -a, b)
    return np.clip(ndtr(b2) - ndtr(a2), 0.0, 1.0)


def expected_closeness_improvement(mean: Any, std: Any, target: float, d: Any) -> np.ndarray:
    """E[max(0, d - |X - target|)] for X ~ N(mean, std): EI of closeness over best = -d.

    With m = mean - target and the truncated moments of a normal on [a, b]
    (P = Phi(beta) - Phi(alpha), E[x; a<x<b] = m P + s (phi(alpha) - phi(beta))):
    EI = integral over [0, d] of (d - x) f + integral over [-d, 0] of (d + x) f.

    Parameters
    ----------
    mean, std : array_like
        Per site.
    target : float
        Target dE (eV).
    d : array_like
        Distance to the target of the best labelled site (>= 0).

    Returns
    -------
    numpy.ndarray
        Expected improvements (>= 0).
    """
    m = np.asarray(mean, dtype=float) - target
    s = np.maximum(np.asarray(std, dtype=float), _TINY)
    d = np.maximum(np.asarray(d, dtype=float), 0.0)

    def part(a: Any, b: Any) -> tuple[np.ndarray, np.ndarray]:
        alpha, beta = (a - m) / s, (b - m) / s
        p = ndtr(beta) - ndtr(alpha)
        first = m * p + s * (norm.pdf(alpha) - norm.pdf(beta))  # E[x; a < x < b]
        return p, first

    p_pos, x_pos = part(0.0, d)
    p_neg, x_neg = part(-d, 0.0)
    return np.maximum(d * p_pos - x_pos + d * p_neg + x_neg, 0.0)


def scores(
    strategy: str,
    mean: Any,
    std: Any,
    *,
    target: float,
    window: float,
    best: float | None = None,
    sigma: float = DEFAULT_SIGMA,
    rng: np.random.Generator | int | None = None,
    beta: float = DEFAULT_BETA,
) -> np.ndarray:
    """Score per site, higher = pick first (see the module docstring for each strategy).

    Parameters
    ----------
    strategy : str
        One of :data:`~screener.surrogate.strategies.STRATEGIES`.
    mean, std : array_like
        The surrogate's prediction per site.
    target, window : float
        Target dE and the half width of its window (eV).
    best : float, optional
        Best closeness -|dE - target| labelled so far (``ei``).
    sigma : float
        Width of the ``gaussian-target`` weights (eV).
    rng : numpy.random.Generator or int, optional
        Randomness of ``gaussian-target`` and ``random``.
    beta : float
        Weight of the std in ``ucb``.

    Returns
    -------
    numpy.ndarray
        One score per site.
    """
    check_strategy(strategy)
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


# -- spreading a batch over surfaces -------------------------------------------------------------
def _exclude_mask(exclude: np.ndarray | Sequence[int] | None, n: int) -> np.ndarray:
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


def spread_over_surfaces(
    score: np.ndarray,
    mean: np.ndarray,
    surfaces: Sequence[str] | None,
    n: int,
    *,
    target: float,
    exclude: np.ndarray | Sequence[int] | None = None,
    spread: bool = True,
) -> np.ndarray:
    """Indices of at most ``n`` sites by score, round-robin over surfaces, excluded ones skipped.

    Sites are ranked by score, ties by closeness of the mean to the target; then the best site of
    each surface (in that order), then each surface's second best, and so on.

    Parameters
    ----------
    score, mean : numpy.ndarray
        Per pool site.
    surfaces : sequence of str, optional
        Surface of each pool site (None: every site its own).
    n : int
        Most sites to return.
    target : float
        Target dE (eV), for the tie break.
    exclude : numpy.ndarray or sequence of int, optional
        Sites never to pick (labelled, queued, chosen): a boolean mask or indices.
    spread : bool
        False: simply the ``n`` best scores.

    Returns
    -------
    numpy.ndarray
        Pool indices (int), in pick order.
    """
    keep = np.nonzero(~_exclude_mask(exclude, len(mean)))[0]
    if len(keep) == 0:
        return np.zeros(0, dtype=int)
    closeness = np.abs(mean[keep] - target)
    order = keep[np.lexsort((closeness, -score[keep]))]  # by score, then closeness
    if not spread or surfaces is None:
        return order[:n].astype(int)
    # rank of each site within its surface, in score order (0 = the surface's best site)
    code = _surface_codes(surfaces)[order]
    by_surface = np.argsort(code, kind="stable")  # grouped by surface, score order within
    grouped = code[by_surface]
    starts = np.flatnonzero(np.r_[True, grouped[1:] != grouped[:-1]])
    group_start = np.repeat(starts, np.diff(np.r_[starts, len(code)]))
    rank = np.empty(len(code), dtype=int)
    rank[by_surface] = np.arange(len(code)) - group_start
    return order[np.argsort(rank, kind="stable")][:n].astype(int)


def _surface_codes(surfaces: Sequence[str]) -> np.ndarray:
    """An integer per site, equal for equal surfaces (hashing: a million sites in well under a
    second, where sorting them as Python strings took several)."""
    codes: dict[str, int] = {}
    return np.fromiter(
        (codes.setdefault(s, len(codes)) for s in surfaces), dtype=np.int64, count=len(surfaces)
    )


# -- estimators over a pool (X = a column of pool row indices) -----------------------------------
def pool_rows(n: int) -> np.ndarray:
    """X of a pool of ``n`` sites for the pool estimators: its row indices, shape (n, 1)."""
    return np.arange(int(n)).reshape(-1, 1)


def _rows(X: Any) -> np.ndarray:
    return np.asarray(X).reshape(len(X), -1)[:, 0].astype(int)


class StoredPredictions(RegressorMixin, BaseEstimator):
    """Predictions already made (a trained model's stored mean and std), as a pool regressor.

    ``predict(X, return_std=True)`` gives (mean, std) of the pool rows named by X; there is no
    model to refit, so ``fit`` raises.

    Parameters
    ----------
    mean, std : numpy.ndarray
        Per pool site.
    """

    def __init__(self, mean: np.ndarray | None = None, std: np.ndarray | None = None) -> None:
        self.mean = mean
        self.std = std

    def fit(self, X: Any, y: Any) -> StoredPredictions:
        """Refuse: stored predictions are read, not refitted (train a new model version)."""
        raise TypeError("StoredPredictions are read, never refitted: train a new model version")

    def predict(self, X: Any, return_std: bool = False) -> Any:
        """Mean (and std with ``return_std``) of the pool rows named by X."""
        rows = _rows(X)
        mean = np.asarray(self.mean, dtype=float)[rows]
        return (mean, np.asarray(self.std, dtype=float)[rows]) if return_std else mean


class PoolRegressor(RegressorMixin, BaseEstimator):
    """A :class:`~screener.surrogate.models.Surrogate` over a fixed pool, as a regressor.

    ``fit`` records the labelled pool rows named by X; a fresh copy of ``surrogate`` is fitted on
    them at the first ``predict`` after it (lazy: a strategy that never predicts, like
    ``random``, costs nothing per round), which predicts the whole pool once;
    ``predict(X, return_std=True)`` gives (mean, std) of the rows named by X.

    Parameters
    ----------
    surrogate : Surrogate
        Unfitted template, copied at every fit.
    fingerprints : sequence of dict
        The pool's site fingerprints.
    groups : sequence of str
        The pool's CV groups (surfaces).
    pure : sequence of str or None, optional
        The element of each pure-metal row.
    seed : int
        Seed of every fit.
    """

    def __init__(
        self,
        surrogate: Any = None,
        fingerprints: Sequence[dict] | None = None,
        groups: Sequence[str] | None = None,
        pure: Sequence[str | None] | None = None,
        seed: int = 0,
    ) -> None:
        self.surrogate = surrogate
        self.fingerprints = fingerprints
        self.groups = groups
        self.pure = pure
        self.seed = seed

    def fit(self, X: Any, y: Any) -> PoolRegressor:
        """Store the labelled rows (X: pool indices) and their energies; fit on first use."""
        self.rows_ = _rows(X)
        self.y_ = np.asarray(y, dtype=float).reshape(-1)
        self.model_ = None
        self.pool_prediction_: tuple[np.ndarray, np.ndarray] | None = None
        return self

    def fitted_model(self) -> Any:
        """The surrogate fitted on the stored rows (fitting it now if needed)."""
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

    def predict(self, X: Any, return_std: bool = False) -> Any:
        """Mean (and std with ``return_std``) of the pool rows named by X."""
        rows = _rows(X)
        if getattr(self, "pool_prediction_", None) is None:  # the whole pool, once per fit
            self.pool_prediction_ = self.fitted_model().predict(self.fingerprints)
        mean, std = self.pool_prediction_
        return (mean[rows], std[rows]) if return_std else mean[rows]


def predict_mean_std(estimator: Any, X: Any) -> tuple[np.ndarray, np.ndarray]:
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


# -- modAL query strategies ----------------------------------------------------------------------
def _best_labelled(y_training: Any, target: float) -> float | None:
    if y_training is None or not len(y_training):
        return None
    return -float(np.min(np.abs(np.asarray(y_training, dtype=float) - target)))


def _query(
    strategy: str,
    learner: Any,
    X_pool: Any,
    n_instances: int = 1,
    *,
    target: float,
    window: float = DEFAULT_WINDOW,
    surfaces: Sequence[str] | None = None,
    exclude: np.ndarray | Sequence[int] | None = None,
    seed: int = 0,
    best: float | None = None,
    sigma: float = DEFAULT_SIGMA,
    beta: float = DEFAULT_BETA,
    spread: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Score the pool with ``strategy`` and pick a batch spread over surfaces.

    ``best`` (for ``ei``) defaults to the closeness of the best labelled row the learner holds
    (``learner.y_training``).  Returns (indices into X_pool, their scores), the pair modAL's
    ``query`` unpacks as (result, metrics).
    """
    if len(X_pool) == 0:
        return np.zeros(0, dtype=int), np.zeros(0)
    if strategy == "random":  # needs no model: a lazy estimator stays unfitted
        mean = np.zeros(len(X_pool))
        std = mean
    else:
        mean, std = predict_mean_std(learner.estimator, X_pool)
    if best is None:
        best = _best_labelled(getattr(learner, "y_training", None), target)
    score = scores(
        strategy, mean, std, target=target, window=window, best=best, sigma=sigma,
        rng=np.random.default_rng(seed), beta=beta,
    )  # fmt: skip
    picked = spread_over_surfaces(
        score, mean, surfaces, int(n_instances), target=target, exclude=exclude, spread=spread
    )
    return picked, score[picked]


def target_window_query(
    learner: Any, X_pool: Any, n_instances: int = 1, **kwargs: Any
) -> tuple[np.ndarray, np.ndarray]:
    """modAL query strategy ``target-window``: P(dE in the target window), spread over surfaces.

    Keyword arguments: those of :class:`BatchRequest` but ``n`` (``target`` required).
    """
    return _query("target-window", learner, X_pool, n_instances, **kwargs)


def gaussian_target_query(
    learner: Any, X_pool: Any, n_instances: int = 1, **kwargs: Any
) -> tuple[np.ndarray, np.ndarray]:
    """modAL query strategy ``gaussian-target``: a draw weighted by closeness of the mean."""
    return _query("gaussian-target", learner, X_pool, n_instances, **kwargs)


def ei_query(
    learner: Any, X_pool: Any, n_instances: int = 1, **kwargs: Any
) -> tuple[np.ndarray, np.ndarray]:
    """modAL query strategy ``ei``: expected improvement of closeness to the target."""
    return _query("ei", learner, X_pool, n_instances, **kwargs)


def ucb_query(
    learner: Any, X_pool: Any, n_instances: int = 1, **kwargs: Any
) -> tuple[np.ndarray, np.ndarray]:
    """modAL query strategy ``ucb``: optimistic closeness, -|mean - target| + beta std."""
    return _query("ucb", learner, X_pool, n_instances, **kwargs)


def max_std_query(
    learner: Any, X_pool: Any, n_instances: int = 1, **kwargs: Any
) -> tuple[np.ndarray, np.ndarray]:
    """modAL query strategy ``max-std``: the largest predicted std."""
    return _query("max-std", learner, X_pool, n_instances, **kwargs)


def random_query(
    learner: Any, X_pool: Any, n_instances: int = 1, **kwargs: Any
) -> tuple[np.ndarray, np.ndarray]:
    """modAL query strategy ``random``: uniform (the estimator is not asked)."""
    return _query("random", learner, X_pool, n_instances, **kwargs)


QueryStrategy = Callable[..., tuple[np.ndarray, np.ndarray]]

#: modAL query strategy of each strategy name (the names the CLI and stored selections use)
QUERY_STRATEGIES: dict[str, QueryStrategy] = {
    "target-window": target_window_query,
    "gaussian-target": gaussian_target_query,
    "ei": ei_query,
    "ucb": ucb_query,
    "max-std": max_std_query,
    "random": random_query,
}


# -- the learner ---------------------------------------------------------------------------------
_FINITE = (
    "ensure_all_finite"
    if "ensure_all_finite" in inspect.signature(check_X_y).parameters
    else "force_all_finite"  # scikit-learn < 1.6
)


def _check_training(X: Any, y: Any, finite: bool) -> None:
    check_X_y(
        X, y, accept_sparse=True, ensure_2d=False, allow_nd=True, multi_output=True, dtype=None,
        **{_FINITE: finite},
    )  # fmt: skip


class ActiveLearner(_ModalActiveLearner):
    """modAL's ActiveLearner, with its two input checks in scikit-learn's current keyword.

    Why a subclass: modAL 0.4.2.1's ``fit`` and ``teach`` call ``check_X_y(...,
    force_all_finite=...)``; scikit-learn 1.6 renamed the keyword ``ensure_all_finite`` (a
    FutureWarning at every call) and 1.8 removed it (a TypeError).  These two public methods do
    what modAL's do, with the keyword the installed scikit-learn takes; everything else
    (``query``, the training data, the fits) is modAL's own.
    """

    def fit(self, X: Any, y: Any, bootstrap: bool = False, **fit_kwargs: Any) -> ActiveLearner:
        """Forget the training data, keep X and y, and fit the estimator on them."""
        _check_training(X, y, self.force_all_finite)
        self.X_training, self.y_training = X, y
        self._fit_to_known(bootstrap=bootstrap, **fit_kwargs)
        return self

    def teach(
        self, X: Any, y: Any, bootstrap: bool = False, only_new: bool = False, **fit_kwargs: Any
    ) -> None:
        """Add X and y to the training data and refit the estimator (on X and y if only_new)."""
        _check_training(X, y, self.force_all_finite)
        if only_new:
            self._fit_on_new(X, y, bootstrap=bootstrap, **fit_kwargs)
            return
        if self.X_training is None:
            self.X_training, self.y_training = X, y
        else:
            self.X_training = data_vstack((self.X_training, X))
            self.y_training = data_vstack((self.y_training, y))
        self._fit_to_known(bootstrap=bootstrap, **fit_kwargs)


def make_learner(
    estimator: Any,
    strategy: str = "target-window",
    *,
    X_training: Any = None,
    y_training: Any = None,
) -> ActiveLearner:
    """A modAL learner with ``estimator`` and the query strategy of ``strategy``.

    Parameters
    ----------
    estimator : StoredPredictions, PoolRegressor or scikit-learn regressor
        Gives (mean, std) for the rows of X_pool: ``predict(X, return_std=True)``, or per-tree
        spread for a forest.
    strategy : str
        One of :data:`~screener.surrogate.strategies.STRATEGIES`.
    X_training, y_training : array_like, optional
        Labelled rows to fit the estimator on now (not with :class:`StoredPredictions`).

    Returns
    -------
    ActiveLearner
        ``learner.query`` picks (through :func:`propose`), ``learner.teach`` adds labels and
        refits.
    """
    check_strategy(strategy)
    return ActiveLearner(
        estimator=estimator,
        query_strategy=QUERY_STRATEGIES[strategy],
        X_training=X_training,
        y_training=y_training,
    )


# -- the proposer --------------------------------------------------------------------------------
@dataclass(frozen=True)
class BatchRequest:
    """What :func:`propose` is asked for: a batch from a pool, and how to score it.

    Attributes
    ----------
    n : int
        Most sites in the batch (>= 1).
    surfaces : sequence of str
        Surface of each pool site: the batch is spread over them.
    target : float
        Target dE (eV).
    window : float
        Half width of the target window (eV).
    exclude : numpy.ndarray or sequence of int, optional
        Sites never to pick (labelled, queued): a boolean mask over the pool or indices.
    seed : int
        Randomness of ``gaussian-target`` and ``random``.
    best : float, optional
        Best closeness -|dE - target| labelled so far (``ei``); None: from the learner's
        training labels, else d = window.
    sigma, beta : float
        ``gaussian-target`` width and ``ucb`` std weight.
    spread : bool
        Round-robin over surfaces (the loop's way), or simply the best scores.
    """

    n: int
    surfaces: Sequence[str]
    target: float
    window: float = DEFAULT_WINDOW
    exclude: np.ndarray | Sequence[int] | None = None
    seed: int = 0
    best: float | None = None
    sigma: float = DEFAULT_SIGMA
    beta: float = DEFAULT_BETA
    spread: bool = True


@dataclass(frozen=True)
class Proposal:
    """The batch :func:`propose` picked.

    Attributes
    ----------
    indices : numpy.ndarray
        Pool indices (int), in pick order.
    scores : numpy.ndarray
        The strategy's score of each pick.
    """

    indices: np.ndarray
    scores: np.ndarray

    def __len__(self) -> int:
        return len(self.indices)


def propose(learner: ActiveLearner, request: BatchRequest, X_pool: Any = None) -> Proposal:
    """The sites to calculate next: ``learner.query`` on the pool, spread over its surfaces.

    The one proposer of the loop (:func:`screener.learning.select`, a learner over
    :class:`StoredPredictions`) and of the backtest (a learner over a :class:`PoolRegressor`).

    Parameters
    ----------
    learner : ActiveLearner
        From :func:`make_learner`: its estimator predicts, its query strategy picks.
    request : BatchRequest
        Batch size, the pool's surfaces, target, exclusions, seed.
    X_pool : array_like, optional
        The pool as the estimator takes it; default :func:`pool_rows` (pool indices).

    Returns
    -------
    Proposal
        At most ``request.n`` pool indices and their scores.
    """
    if int(request.n) < 1:
        raise InputError(f"batch size must be >= 1 (got {request.n})")
    n_pool = len(request.surfaces)
    X_pool = pool_rows(n_pool) if X_pool is None else X_pool
    if len(X_pool) != n_pool:
        raise ValueError("surfaces must have one entry per pool site")
    indices, _, metrics = learner.query(
        X_pool,
        n_instances=int(request.n),
        return_metrics=True,
        target=request.target,
        window=request.window,
        surfaces=request.surfaces,
        exclude=request.exclude,
        seed=request.seed,
        best=request.best,
        sigma=request.sigma,
        beta=request.beta,
        spread=request.spread,
    )
    return Proposal(np.asarray(indices, dtype=int), np.asarray(metrics, dtype=float))
