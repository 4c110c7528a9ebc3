"""The surrogate against the store: import, train, score and select for a space.

* training rows: finished adsorbate+slab calculations of a profile on the space's sites (quality
  flags empty), plus results imported into the space for that profile; features come from the
  relaxed structures (:func:`screener.jobs.ingest.surrogate_view`);
* a trained model is a :class:`~screener.store.documents.ModelVersion` (metrics, provenance) and
  a pickle in ``<data_dir>/models``; a retrain is skipped when the training rows did not change;
* scoring, done by ``train`` once per model version (and again when the space gained sites),
  predicts every site of the space from its enumerated fingerprint, in chunks on dask, and stores
  the predictions as :class:`~screener.store.documents.PredictionChunk` documents, per site and
  (lowest site) per surface;
* selection only reads: per adsorbate, the batch the loop would submit now: sites with no job for
  the profile, ranked by the acquisition strategy (:mod:`screener.surrogate.acquisition`) on the
  stored predictions and spread over surfaces.  Without a model (no results yet) the batch is
  random, spread the same way.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypedDict

import numpy as np

from screener.errors import InputError
from screener.profiles import current_identity, identity
from screener.queries import (
    bulk_counters,
    by_bulk,
    by_ids,
    get_space,
    of_space,
    oldest_fingerprint,
)
from screener.settings import load_settings
from screener.store import ElementSpace, Site, Store
from screener.store.documents import Calculation, Job, ModelVersion, PredictionChunk, _now

log = logging.getLogger(__name__)

SCORE_CHUNK = 100_000  # sites per dask block and per stored prediction chunk
KEEP_PREDICTIONS = 2  # model versions whose predictions are kept per (space, adsorbate, profile)
MIN_TRAIN = 10  # fewer finished results than this: no model, selection stays random
SHIFT_LIMIT = 20.0  # eV: an import shift (a reference state's dE against the gas) lies within


# -- training data -----------------------------------------------------------------------------
def usable_results(profile: str, adsorbate: str) -> dict[str, Any]:
    """Query for finished adsorption energies without quality flags (training and candidates)."""
    return {
        "kind": "adslab",
        "state": "done",
        "profile": identity(profile),
        "adsorbate": adsorbate,
        "flags": {"$size": 0},
    }


@dataclass
class TrainingRows:
    """Training data of one (space, adsorbate, profile), aligned: row i of every field is one
    finished result."""

    keys: list[str] = field(default_factory=list)  # the calculation keys
    fps: list[dict] = field(default_factory=list)  # fingerprints (dicts of the fingerprint module)
    energies: list[float] = field(default_factory=list)  # dE, eV
    groups: list[str] = field(default_factory=list)  # CV group: the surface (or the result's key)
    pure: list[str | None] = field(default_factory=list)  # the element of a unary surface
    sites: list[str | None] = field(default_factory=list)  # own site id; None for imported rows

    def __len__(self) -> int:
        return len(self.keys)


@dataclass
class SpaceSites:
    """Every site of a space for one adsorbate, aligned, in storage order."""

    ids: list[str] = field(default_factory=list)
    surfaces: list[str] = field(default_factory=list)  # the surface id of each site
    fps: list[dict] = field(default_factory=list)  # fingerprints ({} when not read)

    def __len__(self) -> int:
        return len(self.ids)


def training_rows(space: str, adsorbate: str, profile: str) -> TrainingRows:
    """Finished, unflagged adsorption energies of a space for one adsorbate and profile.

    A result of one of the space's sites is known by that site's enumerated fingerprint, the
    one every unlabelled site is scored by (an adsorbate that moved while relaxing is still the
    outcome of calculating that site: on the Ag-Au-Cu-Pd-Pt EMT pool, where 618 of 1716 H
    relaxations end on other atoms, training on the relaxed fingerprints doubled the calls a
    backtest needed); an imported result by its stored fingerprint.  Only the sites that have
    results are read.
    """
    doc = get_space(space)
    bulks = set(doc.bulks)
    projection = {"key": 1, "fingerprint": 1, "adsorption_energy": 1, "group": 1}
    projection.update(pure=1, site=1, space=1, bulk=1)
    query = usable_results(profile, adsorbate)
    calcs = of_space(Calculation._get_collection(), list(bulks), space, query, projection)
    calcs.sort(key=lambda c: c["key"])
    own_ids = [c["site"] for c in calcs if c.get("site") is not None and c.get("bulk") in bulks]
    site_fps = {
        s["_id"]: s.get("fingerprint")
        for s in by_ids(Site._get_collection(), own_ids, {"fingerprint": 1})
    }
    rows = TrainingRows()
    for calc in calcs:
        own = calc.get("site") in site_fps
        fingerprint = site_fps[calc["site"]] if own else calc.get("fingerprint")
        if not (own or calc.get("space") == space) or not fingerprint:
            continue
        rows.keys.append(calc["key"])
        rows.fps.append(fingerprint)
        rows.energies.append(float(calc["adsorption_energy"]))
        rows.groups.append(calc.get("group") or calc["key"])
        rows.pure.append(calc.get("pure"))
        rows.sites.append(str(calc["site"]) if own else None)
    return rows


def default_profile(space: str, profile: str | None = None) -> str:
    """The profile identity (:mod:`screener.profiles`) a read or a training of a space is about.

    ``profile`` given: its identity (a name stands for this code's settings).  Otherwise the
    profile of this code with the most finished results in the space, ``gpaw`` when none has.
    """
    from workflows.profiles import PROFILES

    if profile:
        return identity(profile)
    doc = get_space(space)
    current = [p.identity for p in PROFILES.values()]
    counts: Counter[str] = Counter()
    query = {"kind": "adslab", "state": "done", "profile": {"$in": current}}
    for calc in of_space(
        Calculation._get_collection(), list(doc.bulks), space, query, {"profile": 1}
    ):
        counts[calc["profile"]] += 1
    return counts.most_common(1)[0][0] if counts else PROFILES["gpaw"].identity


def _data_key(keys: list[str], energies: list[float]) -> str:
    blob = json.dumps([keys, [round(e, 6) for e in energies]])
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


# -- models ------------------------------------------------------------------------------------
def latest_model(space: str, adsorbate: str, profile: str) -> ModelVersion | None:
    return (
        ModelVersion.objects(space=space, adsorbate=adsorbate, profile=identity(profile))
        .order_by("-version")
        .first()
    )


def model_dir(store: Store) -> Path:
    return store.settings.data_dir / "models"


def load_model(store: Store, version: ModelVersion):
    """The pickled surrogate of a model version (checked against its sha256)."""
    from screener.surrogate.models import Surrogate

    path = model_dir(store) / version.file
    try:
        blob = path.read_bytes()
    except OSError as exc:
        raise InputError(
            f"model file {path} of {version.space} v{version.version}: {exc}"
        ) from None
    if hashlib.sha256(blob).hexdigest() != version.sha256:
        raise InputError(f"model file {path} does not match its checksum; retrain")
    return Surrogate.loads(blob)


@dataclass
class TrainOutcome:
    adsorbate: str
    profile: str
    trained: bool
    reason: str = ""
    version: int | None = None
    n_train: int = 0
    cv: dict[str, Any] = field(default_factory=dict)
    model: str | None = None
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items()}


def train(
    store: Store,
    space: str,
    *,
    adsorbates: list[str] | None = None,
    profile: str | None = None,
    force: bool = False,
    seed: int = 0,
) -> list[TrainOutcome]:
    """Retrain each adsorbate's surrogate on the space's finished results when they changed."""
    from screener.surrogate.features import feature_set_for_version
    from screener.surrogate.models import Surrogate

    doc = get_space(space, adsorbates or ())
    profile = default_profile(space, profile)
    outcomes = []
    for adsorbate in adsorbates or list(doc.adsorbates):
        rows = training_rows(space, adsorbate, profile)
        n = len(rows)
        outcome = TrainOutcome(adsorbate, profile, False, n_train=n)
        if n < MIN_TRAIN or len(set(rows.groups)) < 2:
            outcome.reason = (
                f"{n} results on {len(set(rows.groups))} surfaces; need >= {MIN_TRAIN} on >= 2"
            )
            outcomes.append(outcome)
            continue
        key = _data_key(rows.keys, rows.energies)
        last = latest_model(space, adsorbate, profile)
        if last is not None and last.data_key == key and not force:
            outcome.reason = f"no new results since v{last.version}"
            outcome.version, outcome.cv, outcome.model = last.version, dict(last.cv), last.model
            if last.scored_sites != space_site_count(doc, adsorbate):  # new sites were seeded
                score(store, space, adsorbate, last)
            outcomes.append(outcome)
            continue
        started = time.perf_counter()
        # the feature set every site of the space can be scored with (sites seeded by an older
        # fingerprint version lack layers, zones or coordination until the space is re-seeded)
        oldest = oldest_fingerprint(list(doc.bulks), adsorbate)
        feature_set = feature_set_for_version(oldest)  # fit checks the rows too
        surrogate = Surrogate(adsorbate, feature_set=feature_set).fit(
            rows.fps, np.array(rows.energies), rows.groups, rows.pure, seed=seed
        )
        seconds = time.perf_counter() - started
        version = (last.version if last else 0) + 1
        blob = surrogate.dumps()
        name = f"{space}/{adsorbate}-{profile}-v{version}.pkl"
        path = model_dir(store) / name
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(blob)
        tmp.replace(path)
        info = json.loads(json.dumps(surrogate.info, default=float))
        model = ModelVersion(
            space=space,
            adsorbate=adsorbate,
            profile=profile,
            version=version,
            n_train=n,
            data_key=key,
            model=info.get("model"),
            feature_set=info.get("feature_set"),
            cv=info.get("cv", {}),
            info=info,
            file=name,
            sha256=hashlib.sha256(blob).hexdigest(),
            fit_seconds=seconds,
        )
        model.save(force_insert=True)
        score(store, space, adsorbate, model)
        outcome.trained, outcome.version, outcome.seconds = True, version, round(seconds, 2)
        outcome.cv, outcome.model = info.get("cv", {}), info.get("model")
        outcomes.append(outcome)
    return outcomes


# -- scoring -----------------------------------------------------------------------------------
class SelectedSite(TypedDict):
    """One site of the batch :func:`select` proposes (JSON-ready)."""

    site_id: str
    adsorbate: str
    surface_id: str
    strategy: str  # the strategy that chose it ("random" while the adsorbate has no model)
    model_version: int | None
    mean: float | None  # the model's prediction, eV
    std: float | None
    target: float  # the target dE it was chosen for, eV
    bulk_formula: str | None
    miller: list[int] | None
    site_type: str | None


def space_site_count(doc: ElementSpace, adsorbate: str) -> int:
    """Sites of one adsorbate in a space, from its bulks' counters."""
    return bulk_counters(list(doc.bulks))[1].get(adsorbate, 0)


def space_sites(space: str, adsorbate: str, *, fingerprints: bool = True) -> SpaceSites:
    """Every site of a space for one adsorbate: ids, surface ids, fingerprints (storage order)."""
    doc = get_space(space)
    sites = SpaceSites()
    projection = {"_id": 1, "surface": 1, "fingerprint": 1} if fingerprints else {"surface": 1}
    query = {"adsorbate": adsorbate}
    for site in by_bulk(Site._get_collection(), list(doc.bulks), query, projection, sort="_id"):
        sites.ids.append(str(site["_id"]))
        sites.surfaces.append(str(site["surface"]))
        sites.fps.append(site.get("fingerprint") or {})
    return sites


def predict_chunked(surrogate, X: np.ndarray, settings, chunk: int = SCORE_CHUNK):
    """Mean and std for every row of ``X``, in dask blocks (threads, or the configured cluster)."""
    import dask
    import dask.array as da

    if len(X) == 0:
        return np.zeros(0), np.zeros(0)
    blocks = da.from_array(X, chunks=(chunk, X.shape[1]))

    def block(b: np.ndarray) -> np.ndarray:
        mean, std = surrogate.predict(X=b)
        return np.column_stack([mean, std])

    out = blocks.map_blocks(block, chunks=(blocks.chunks[0], (2,)), dtype=float)
    if settings.dask_scheduler or settings.dask_cluster == "slurm":
        from screener.cluster import dask_client

        with dask_client(settings, min(len(blocks.chunks[0]), max(1, settings.dask_workers))) as c:
            result = c.compute(out).result()
    else:
        workers = settings.dask_workers or 1
        result = dask.compute(out, scheduler="threads", num_workers=workers)[0]
    return result[:, 0], result[:, 1]


@dataclass
class Predictions:
    """Stored predictions of one model version, aligned: site i lies on surface i."""

    version: int
    sites: list[str]
    surfaces: list[str]
    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def empty(cls, version: int) -> Predictions:
        return cls(version, [], [], np.zeros(0), np.zeros(0))


def lowest_per_surface(predictions: Predictions) -> Predictions:
    """For every surface, its site of lowest predicted mean (surfaces in first-seen order)."""
    best: dict[str, int] = {}
    for index, surface in enumerate(predictions.surfaces):
        current = best.get(surface)
        if current is None or predictions.mean[index] < predictions.mean[current]:
            best[surface] = index
    order = np.array(list(best.values()), dtype=int)
    return Predictions(
        predictions.version,
        [predictions.sites[i] for i in order],
        list(best),
        predictions.mean[order] if len(order) else np.zeros(0),
        predictions.std[order] if len(order) else np.zeros(0),
    )


def _store_predictions(version: ModelVersion, level: str, predictions: Predictions) -> None:
    for number, start in enumerate(range(0, len(predictions.sites), SCORE_CHUNK)):
        end = start + SCORE_CHUNK
        PredictionChunk(
            model=version.id,
            space=version.space,
            adsorbate=version.adsorbate,
            profile=version.profile,
            version=version.version,
            chunk=number,
            level=level,
            sites=predictions.sites[start:end],
            surfaces=predictions.surfaces[start:end],
            mean=[float(x) for x in predictions.mean[start:end]],
            std=[float(x) for x in predictions.std[start:end]],
        ).save(force_insert=True)


@dataclass
class Scored:
    """What :func:`score` stored, and the seconds each part took."""

    predictions: Predictions
    features_s: float
    predict_s: float
    store_s: float


def score(store: Store, space: str, adsorbate: str, version: ModelVersion) -> Scored:
    """Predict every site of the space with a model version and store the predictions (per site,
    and the lowest site per surface); returns them with the seconds each part took."""
    started = time.perf_counter()
    surrogate = load_model(store, version)
    sites = space_sites(space, adsorbate)
    X = surrogate.features(sites.fps) if len(sites) else np.zeros((0, 1))
    featurized = time.perf_counter()
    mean, std = predict_chunked(surrogate, X, store.settings)
    predicted = time.perf_counter()
    predictions = Predictions(version.version, sites.ids, sites.surfaces, mean, std)
    scope = {"space": space, "adsorbate": adsorbate, "profile": version.profile}
    PredictionChunk.objects(**scope, version=version.version).delete()
    _store_predictions(version, "site", predictions)
    _store_predictions(version, "surface", lowest_per_surface(predictions))
    PredictionChunk.objects(**scope, version__lte=version.version - KEEP_PREDICTIONS).delete()
    ModelVersion.objects(id=version.id).update_one(
        set__scored_sites=len(predictions.sites), set__scored=_now()
    )
    return Scored(
        predictions, featurized - started, predicted - featurized, time.perf_counter() - predicted
    )


def stored_predictions(
    space: str, adsorbate: str, profile: str, *, level: str = "site"
) -> Predictions | None:
    """The latest model version's stored predictions (per site or per surface); None without a
    scored model."""
    last = latest_model(space, adsorbate, profile)
    if last is None or last.scored_sites is None:
        return None
    out = Predictions.empty(last.version)
    mean: list[float] = []
    std: list[float] = []
    for chunk in (
        PredictionChunk._get_collection()
        .find(
            {
                "space": space,
                "adsorbate": adsorbate,
                "profile": last.profile,
                "version": last.version,
                "level": level,
            },
            {"sites": 1, "surfaces": 1, "mean": 1, "std": 1},
        )
        .sort("chunk", 1)
    ):
        out.sites.extend(chunk["sites"])
        out.surfaces.extend(chunk["surfaces"])
        mean.extend(chunk["mean"])
        std.extend(chunk["std"])
    out.mean, out.std = np.array(mean, dtype=float), np.array(std, dtype=float)
    return out


# -- selection ---------------------------------------------------------------------------------
def attempted_sites(profile: str) -> set[str]:
    """Sites with a job for this profile (queued, running, done or failed): never reselected."""
    return {
        str(job["site"])
        for job in Job._get_collection().find({"profile": identity(profile)}, {"site": 1})
    }


def split_batch(n: int, adsorbates: list[str]) -> dict[str, int]:
    """n over adsorbates as evenly as possible (first ones get the remainder)."""
    base, extra = divmod(n, len(adsorbates))
    return {a: base + (1 if i < extra else 0) for i, a in enumerate(adsorbates)}


def select(
    store: Store,
    space: str,
    n: int,
    *,
    profile: str | None = None,
    adsorbates: list[str] | None = None,
    strategy: str = "target-window",
    targets: dict[str, float] | None = None,
    window: float | None = None,
    seed: int = 0,
) -> list[SelectedSite]:
    """The batch the loop would submit now: up to ``n`` sites over the space's adsorbates.

    Per adsorbate, the proposer the backtest uses too
    (:func:`screener.surrogate.acquisition.propose`) picks from the latest model's stored
    predictions (``train`` scores; no model is loaded or refitted), skipping sites with a job for
    the profile and spreading the batch over surfaces.  Without a model the batch is random,
    spread the same way.  Writes nothing.

    Parameters
    ----------
    store : Store
        The open store.
    space : str
        Element space name.
    n : int
        Batch size, split over the adsorbates.
    profile : str, optional
        Calculator profile (default: the one with the most results).
    adsorbates : list of str, optional
        Default: all of the space's.
    strategy : str
        Acquisition strategy (one of :data:`~screener.surrogate.strategies.STRATEGIES`).
    targets : dict, optional
        Target dE per adsorbate (default: the settings' ``targets``, else the adsorbate's).
    window : float, optional
        Half width of the target window (eV; default: the adsorbate's, as for the target).
    seed : int
        Randomness of the random strategies.

    Returns
    -------
    list of SelectedSite
        One row per site.
    """
    from screener.surrogate.acquisition import (
        BatchRequest,
        StoredPredictions,
        make_learner,
        propose,
    )
    from screener.surrogate.strategies import check_strategy

    if n < 1:
        raise InputError(f"batch size must be >= 1 (got {n})")
    check_strategy(strategy)
    doc = get_space(space, adsorbates or ())
    profile = default_profile(space, profile)
    wanted = adsorbates or list(doc.adsorbates)
    settings = load_settings()
    attempted = attempted_sites(profile)
    shares = split_batch(n, wanted)
    chosen: list[SelectedSite] = []
    for adsorbate in wanted:
        if shares[adsorbate] == 0:
            continue
        goal = settings.target_window(adsorbate, (targets or {}).get(adsorbate), window)
        target = goal.target
        predictions = stored_predictions(space, adsorbate, profile)
        if predictions is None or not predictions.sites:
            sites = space_sites(space, adsorbate, fingerprints=False)
            predictions = Predictions(
                0, sites.ids, sites.surfaces, np.zeros(len(sites)), np.ones(len(sites))
            )
            version = None
        else:
            version = predictions.version
        use = strategy if version is not None else "random"
        learner = make_learner(StoredPredictions(predictions.mean, predictions.std), use)
        request = BatchRequest(
            n=shares[adsorbate],
            surfaces=predictions.surfaces,
            target=target,
            window=goal.window,
            exclude=np.array([i in attempted for i in predictions.sites], dtype=bool),
            seed=seed,
            best=_best_closeness(space, adsorbate, profile, target),
        )
        for index in propose(learner, request).indices:
            chosen.append(
                SelectedSite(
                    site_id=predictions.sites[index],
                    adsorbate=adsorbate,
                    surface_id=predictions.surfaces[index],
                    strategy=use,
                    model_version=version,
                    mean=None if version is None else float(predictions.mean[index]),
                    std=None if version is None else float(predictions.std[index]),
                    target=target,
                    bulk_formula=None,
                    miller=None,
                    site_type=None,
                )
            )
    _describe(chosen)
    return chosen


def _best_closeness(space: str, adsorbate: str, profile: str, target: float) -> float | None:
    rows = training_rows(space, adsorbate, profile)
    if not rows.energies:
        return None
    return float(-np.min(np.abs(np.array(rows.energies) - target)))


def _describe(rows: list[SelectedSite]) -> None:
    """Add what a person reading the batch wants: bulk formula, Miller index, site type."""
    if not rows:
        return
    from bson import ObjectId

    docs = {
        str(s["_id"]): s
        for s in by_ids(
            Site._get_collection(),
            [ObjectId(r["site_id"]) for r in rows],
            {"bulk_formula": 1, "miller": 1, "site_type": 1},
        )
    }
    for row in rows:
        site = docs.get(row["site_id"], {})
        row["bulk_formula"] = site.get("bulk_formula")
        row["miller"] = site.get("miller")
        row["site_type"] = site.get("site_type")


# -- import ------------------------------------------------------------------------------------
class ImportReport(TypedDict):
    """What :func:`import_labelled` added."""

    space: str
    source: str  # "file:<name> sha256:<first 16 hex digits>[ shifted <ads><+eV>,...]"
    profile: str  # the profile identity the results are recorded under
    shift: dict[str, float]  # eV added to each adsorbate's energies (a file on another scale)
    added: dict[str, int]  # new results by adsorbate
    already_imported: int  # frames of this file and profile found from an earlier import
    replaced: int  # of those, removed and imported again (``replace``)
    frames: int


def import_labelled(
    store: Store,
    path: str | Path,
    space: str,
    *,
    profile: str = "gpaw",
    energy_key: str = "E_ads",
    shift: Mapping[str, float] | None = None,
    replace: bool = False,
) -> ImportReport:
    """Add external labelled adsorption energies to a space (idempotent per file content,
    space and profile).

    The space's results are against the gas references; a file whose frames are relative to
    another state (info ``reference``, e.g. Pt(111)) is refused unless ``shift`` gives, per
    adsorbate, the eV to add (that state's dE against the gas references, same settings).  A
    frame once imported stays as it was: importing the file into the space again adds nothing,
    and under another shift is refused, unless ``replace``: then this file's earlier results in
    the space (for this profile) are removed and imported again as given, e.g. under a corrected
    shift (the surrogate retrains on them at its next training).  Every check comes before the
    frames are fingerprinted and before anything is written; a replacement stopped between its
    removal and its inserts is completed by running it again.

    Every frame becomes a finished adslab :class:`Calculation` keyed
    ``import:<file sha>:<space>:<profile identity>:<i>`` (a key without the space,
    ``import:<file sha>:<profile identity>:<i>``, counts as an import into the space it
    records) with ``source`` (file name and sha256), the
    space, the declared profile (as this code's identity of it) and the fingerprint
    the file knows it by (of the site its relaxation started from where the frame has
    ``initial_binding``, kept as well, else of its structure); frames whose ``info["flags"]`` is
    a non-empty list are kept, flagged, and left out of training like flagged DFT results.
    """
    from screener.surrogate.data import read_labelled
    from workflows.structures import atoms_to_dict

    profile = current_identity(profile)
    doc = get_space(space)
    path = Path(path)
    shift = dict(shift or {})
    for adsorbate, value in shift.items():  # before the file is read
        finite = isinstance(value, int | float) and np.isfinite(value)
        if not (finite and abs(value) <= SHIFT_LIMIT):
            raise InputError(
                f"the {adsorbate} shift must be a finite number within {SHIFT_LIMIT:g} eV"
            )

    def check(rows) -> None:  # everything a refusal needs, before the frames are fingerprinted
        _check_frames_fit(rows, doc, path)
        _on_gas_scale(rows, shift, path)

    data = read_labelled(path, energy_key=energy_key, check=check)
    energies = _on_gas_scale(data, shift, path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    shifted = ",".join(f"{a}{v:+.3f}" for a, v in sorted(shift.items()))
    source = f"file:{path.name} sha256:{digest[:16]}" + (f" shifted {shifted}" if shift else "")
    known: set[int] = set()  # frame indices of this file already in this space for the profile
    earlier = f"^import:{digest[:16]}:({re.escape(space)}:)?{re.escape(profile)}:[0-9]+$"
    for calc in Calculation._get_collection().find(
        {"key": {"$regex": earlier}}, {"key": 1, "source": 1, "space": 1}
    ):
        if calc.get("space") != space:  # a key without the space: an import into another one
            continue
        before = str(calc.get("source") or "").partition(" shifted ")[2]
        if before != (shifted if shift else "") and not replace:
            then = f"shifted {before}" if before else "unshifted"
            now = f"shifted {shifted}" if shift else "unshifted"
            raise InputError(
                f"{path}: already in space '{space}' as {profile} results, imported {then}; "
                f"results already there stay as they are unless replaced, so importing it {now} "
                "is refused"
            )
        known.add(int(calc["key"].rsplit(":", 1)[1]))
    replaced = len(known) if replace else 0
    if replace and known:
        Calculation._get_collection().delete_many({"key": {"$regex": earlier}, "space": space})
        known = set()
    added: Counter[str] = Counter()
    skipped = 0
    for index in range(len(data)):
        key = f"import:{digest[:16]}:{space}:{profile}:{index}"
        adsorbate = data.adsorbates[index]
        if index in known:
            skipped += 1
            continue
        info = data.info[index] if data.info else {}
        flags = info.get("flags", [])
        if isinstance(flags, str):
            try:
                flags = json.loads(flags)
            except ValueError:
                flags = [flags] if flags else []
        Calculation(
            key=key,
            kind="adslab",
            profile=profile,
            state="done",
            structure=atoms_to_dict(data.atoms[index]),
            adsorbate=adsorbate,
            adsorption_energy=float(energies[index]),
            flags=[str(f) for f in flags],
            fingerprint=data.fingerprints[index],
            initial_binding=data.initial_binding[index] or [],
            group=f"import:{data.groups[index]}",
            pure=data.pure[index],
            space=space,
            source=source,
            created=_now(),
        ).save(force_insert=True)
        added[adsorbate] += 1
    return ImportReport(
        space=space,
        source=source,
        profile=profile,
        shift=shift,
        added=dict(added),
        already_imported=skipped + replaced,
        replaced=replaced,
        frames=len(data),
    )


def _check_frames_fit(data, doc, path: Path) -> None:
    """:class:`InputError` for the first frame whose adsorbate or surface elements are not the
    space's."""
    allowed = set(doc.elements)
    for index, adsorbate in enumerate(data.adsorbates):
        if adsorbate not in doc.adsorbates:
            raise InputError(
                f"{path} frame {index}: {adsorbate} is not an adsorbate of space '{doc.name}'"
            )
        surface = data.atoms[index][data.atoms[index].get_tags() > 0]
        extra = sorted(set(surface.get_chemical_symbols()) - allowed)
        if extra:
            raise InputError(
                f"{path} frame {index}: its surface holds {','.join(extra)}, outside the "
                f"elements of space '{doc.name}' ({','.join(doc.elements)})"
            )


def _on_gas_scale(data, shift: dict[str, float], path: Path) -> np.ndarray:
    """The rows' energies against the gas references: ``shift[adsorbate]`` (eV) added to every
    row of that adsorbate; :class:`InputError` for rows relative to another state without one."""
    unknown = sorted(set(shift) - set(data.adsorbates))
    if unknown:
        raise InputError(f"{path}: a shift for {', '.join(unknown)}, which it has no rows of")
    energies = np.asarray(data.energies, dtype=float).copy()
    adsorbates = np.asarray(data.adsorbates, dtype=object)
    for adsorbate in sorted(set(data.adsorbates)):
        rows = np.flatnonzero(adsorbates == adsorbate)
        reference = data.take(rows).reference  # one state per adsorbate, else InputError
        if adsorbate in shift:
            energies[rows] += float(shift[adsorbate])
        elif reference is not None:
            raise InputError(
                f"{path}: its {adsorbate} energies are relative to {reference} (info "
                "'reference'), not to the gas references of the space's results; to import "
                f"them, shift them by the dE of {adsorbate} on {reference} against the gas "
                "references"
            )
    return energies
