"""Typed views of a campaign for the dashboard and the report: the read side, nothing written.

Each function reads the store through :mod:`screener.queries` and :mod:`screener.candidates`
and returns dataclasses; :mod:`screener.figures` draws them.  Reads follow SecantusDB's cost
model (equality queries on indexed fields, filters applied here): see :mod:`screener.queries`.

The candidates table holds one row per surface of a space, rebuilt when the space, its model
or its results change; :class:`CandidateQuery` filters, sorts and pages it, so a page of a
million-site space costs one in-memory pass over its surfaces.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields
from typing import Any, Literal, TypeVar

from bson import ObjectId

from screener.candidates import SurfaceEnergy, nearest_first, ranking_goal, surface_energies
from screener.errors import InputError
from screener.learning import default_profile, latest_model
from screener.profiles import identity
from screener.queries import by_bulk, get_space
from screener.settings import load_settings
from screener.store import Site, Store, Surface
from screener.store.documents import Calculation, Cycle, Job

T = TypeVar("T")

CACHE_TTL_S = 10.0  # a view cached without a key of what it depends on is rebuilt this often
SYMBOL = re.compile(r"[A-Z][a-z]?")
CALCULATION_KINDS = ("gas", "bulk", "slab", "adslab")


# -- a small cache: views are rebuilt when their inputs change or after CACHE_TTL_S ------------
_cache: dict[tuple, tuple[float, Any]] = {}
_cache_lock = threading.Lock()


def _cached(key: tuple, build: Callable[[], T], ttl: float | None = CACHE_TTL_S) -> T:
    now = time.monotonic()
    with _cache_lock:
        hit = _cache.get(key)
    if hit is not None and (ttl is None or now - hit[0] < ttl):
        return hit[1]
    value = build()
    with _cache_lock:
        _cache[key] = (now, value)
        if len(_cache) > 64:  # keep the newest entries
            for old in sorted(_cache, key=lambda k: _cache[k][0])[: len(_cache) - 64]:
                del _cache[old]
    return value


def clear_cache() -> None:
    """Forget every cached view (tests; a new store)."""
    with _cache_lock:
        _cache.clear()


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


# -- surfaces -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class SurfaceInfo:
    """What a surface is: its bulk, Miller index and termination."""

    surface_id: str
    key: str
    bulk_formula: str
    elements: tuple[str, ...]
    miller: tuple[int, ...]
    termination: str


def _surface_info(surface: dict[str, Any], elements: tuple[str, ...] | None) -> SurfaceInfo:
    """A surface document as :class:`SurfaceInfo`; ``elements`` (its bulk's) default to the
    symbols of its bulk formula."""
    formula = surface.get("bulk_formula") or ""
    return SurfaceInfo(
        surface_id=str(surface["_id"]),
        key=surface.get("key") or "",
        bulk_formula=formula,
        elements=elements or tuple(sorted(set(SYMBOL.findall(formula)))),
        miller=tuple(int(i) for i in surface.get("miller") or ()),
        termination=str(surface.get("termination") or ""),
    )


def surface_index(space: str) -> dict[str, SurfaceInfo]:
    """Surface id -> :class:`SurfaceInfo` of every surface of a space (cached until the space
    changes: surfaces are written only by seeding)."""
    doc = get_space(space)
    stamp = (doc.updated.isoformat() if doc.updated else "", len(doc.bulks))

    def build() -> dict[str, SurfaceInfo]:
        from screener.queries import _bulk_docs

        elements = {
            b["_id"]: tuple(sorted(b.get("elements") or ()))
            for b in _bulk_docs(list(doc.bulks), {"elements": 1})
        }
        projection = {"key": 1, "bulk": 1, "bulk_formula": 1, "miller": 1, "termination": 1}
        found = by_bulk(Surface._get_collection(), list(doc.bulks), {}, projection)
        return {str(s["_id"]): _surface_info(s, elements.get(s["bulk"])) for s in found}

    return _cached(("surfaces", space, stamp), build, ttl=None)


# -- candidates ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class CandidateRow:
    """A surface's binding energy (its lowest site) for one adsorbate, and its distance to the
    target."""

    surface_id: str
    surface: str
    bulk_formula: str
    elements: tuple[str, ...]
    miller: tuple[int, ...]
    termination: str
    adsorbate: str
    energy: float
    std: float
    source: str  # "calculated" or "predicted"
    site_id: str
    n_calculated: int
    distance: float
    in_window: bool

    def as_dict(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["elements"] = "-".join(self.elements)
        out["miller"] = "".join(str(i) for i in self.miller)
        return out


SORTABLE = ("distance", "energy", "std", "bulk_formula", "miller", "source", "n_calculated")


@dataclass(frozen=True)
class CandidateQuery:
    """Filters, order and page of the candidates table (validated values only).

    ``elements``: surfaces whose bulk holds all of these; ``miller``: that index exactly;
    ``source``: calculated or predicted only; ``in_window``: only surfaces in the window.
    """

    elements: tuple[str, ...] = ()
    miller: tuple[int, ...] | None = None
    source: Literal["calculated", "predicted"] | None = None
    in_window: bool = False
    sort_by: str = "distance"
    descending: bool = False
    offset: int = 0
    limit: int = 100

    def __post_init__(self) -> None:
        if self.sort_by not in SORTABLE:
            raise InputError(f"cannot sort by '{self.sort_by}' (sortable: {', '.join(SORTABLE)})")
        if self.offset < 0 or not 0 < self.limit <= 10_000:
            raise InputError("a page starts at row >= 0 and holds 1 to 10,000 rows")


@dataclass(frozen=True)
class CandidatePage:
    rows: list[CandidateRow]
    total: int  # rows matching the filters
    surfaces: int  # rows before filtering
    target: float
    window: float
    profile: str


def _model_stamp(space: str, adsorbate: str, profile: str) -> tuple:
    """What a space's per-surface energies depend on: its model and its finished results."""
    model = latest_model(space, adsorbate, profile)
    done = Calculation._get_collection().count_documents(
        {"kind": "adslab", "profile": profile, "state": "done"}
    )
    return (model.version if model else None, model.scored_sites if model else None, done)


def _energies(space: str, adsorbate: str, profile: str) -> tuple[tuple, dict[str, SurfaceEnergy]]:
    """(what they depend on, surface id -> energy row) of :func:`surface_energies`, cached until
    the model or the results change."""
    stamp = _model_stamp(space, adsorbate, profile)
    found = _cached(
        ("energies", space, adsorbate, profile, stamp),
        lambda: surface_energies(space, adsorbate, profile),
        ttl=None,
    )
    return stamp, found


def candidate_rows(
    space: str,
    adsorbate: str,
    *,
    profile: str | None = None,
    target: float | None = None,
    window: float | None = None,
) -> tuple[list[CandidateRow], float, float, str]:
    """Every surface of a space with its binding energy, nearest the target first; with the
    target, window and profile used."""
    _, profile, target, window = ranking_goal(space, adsorbate, profile, target, window)
    stamp, per_surface = _energies(space, adsorbate, profile)
    info = surface_index(space)

    def build() -> list[CandidateRow]:
        rows = []
        for sid, distance in nearest_first(per_surface, target):
            meta, row = info.get(sid), per_surface[sid]
            if meta is None:
                continue
            rows.append(
                CandidateRow(
                    surface_id=sid,
                    surface=meta.key,
                    bulk_formula=meta.bulk_formula,
                    elements=meta.elements,
                    miller=meta.miller,
                    termination=meta.termination,
                    adsorbate=adsorbate,
                    energy=float(row["energy"]),
                    std=float(row["std"]),
                    source=row["source"],
                    site_id=row["site_id"],
                    n_calculated=int(row["n_calculated"]),
                    distance=distance,
                    in_window=distance <= window,
                )
            )
        return rows

    key = ("candidates", space, adsorbate, profile, stamp, target, window, len(info))
    return _cached(key, build, ttl=None), target, window, profile


def candidate_page(
    space: str,
    adsorbate: str,
    query: CandidateQuery,
    *,
    profile: str | None = None,
    target: float | None = None,
    window: float | None = None,
) -> CandidatePage:
    """One page of the candidates table, filtered and sorted as ``query`` says."""
    rows, target, window, profile = candidate_rows(
        space, adsorbate, profile=profile, target=target, window=window
    )
    kept = filter_candidates(rows, query)
    page = kept[query.offset : query.offset + query.limit]
    return CandidatePage(page, len(kept), len(rows), target, window, profile)


def filter_candidates(rows: Sequence[CandidateRow], query: CandidateQuery) -> list[CandidateRow]:
    """Every row that passes ``query``'s filters, in its order (the page is not applied)."""
    wanted = set(query.elements)
    kept = [
        r
        for r in rows
        if (not wanted or wanted <= set(r.elements))
        and (query.miller is None or r.miller == query.miller)
        and (query.source is None or r.source == query.source)
        and (not query.in_window or r.in_window)
    ]
    if query.sort_by != "distance" or query.descending:
        kept.sort(key=lambda r: getattr(r, query.sort_by), reverse=query.descending)
    return kept


def warm_up(space: str) -> None:
    """Build the cached views of a space that pages over every surface read (its surface index
    and, per adsorbate, its energies and default candidate ranking): the dashboard does this in
    the background, so a page finds them ready."""
    surface_index(space)
    for adsorbate in get_space(space).adsorbates:
        candidate_rows(space, adsorbate)


# -- the map ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class MapPoint:
    """A surface's binding energies for two adsorbates (each its lowest site)."""

    surface_id: str
    surface: str
    bulk_formula: str
    miller: tuple[int, ...]
    termination: str
    x: float
    x_std: float
    x_source: str
    y: float
    y_std: float
    y_source: str

    @property
    def calculated(self) -> bool:
        """Both energies calculated (not predicted)."""
        return self.x_source == "calculated" and self.y_source == "calculated"


@dataclass(frozen=True)
class Window:
    adsorbate: str
    target: float
    window: float


@dataclass(frozen=True)
class EnergyMap:
    x: Window
    y: Window
    points: list[MapPoint]
    profile: str


def energy_map(
    space: str, x_adsorbate: str, y_adsorbate: str, *, profile: str | None = None
) -> EnergyMap:
    """The surfaces of a space with both adsorbates' binding energies (Tran & Ulissi's map)."""
    get_space(space, [x_adsorbate, y_adsorbate])
    profile = default_profile(space, profile)
    settings = load_settings()
    per = {a: _energies(space, a, profile)[1] for a in (x_adsorbate, y_adsorbate)}
    info = surface_index(space)
    points = []
    for sid, xs in per[x_adsorbate].items():
        ys, meta = per[y_adsorbate].get(sid), info.get(sid)
        if ys is None or meta is None:
            continue
        points.append(
            MapPoint(
                surface_id=sid,
                surface=meta.key,
                bulk_formula=meta.bulk_formula,
                miller=meta.miller,
                termination=meta.termination,
                x=float(xs["energy"]),
                x_std=float(xs["std"]),
                x_source=xs["source"],
                y=float(ys["energy"]),
                y_std=float(ys["std"]),
                y_source=ys["source"],
            )
        )
    windows = []
    for adsorbate in (x_adsorbate, y_adsorbate):
        goal = settings.target_window(adsorbate)
        windows.append(Window(adsorbate, goal.target, goal.window))
    return EnergyMap(windows[0], windows[1], points, profile)


# -- the model: predictions made before each calculation, against its result ---------------------
@dataclass(frozen=True)
class Prospective:
    """A finished calculation with the prediction the loop stored when it chose the site."""

    job_key: str
    site_id: str
    adsorbate: str
    cycle: int
    model_version: int | None
    predicted: float
    std: float | None
    calculated: float
    finished: dt.datetime | None

    @property
    def error(self) -> float:
        return self.calculated - self.predicted


@dataclass(frozen=True)
class Result:
    """A finished, unflagged result of the loop, with the prediction stored on its job when the
    site was chosen (None for picks made before any model)."""

    job_key: str
    site_id: str
    adsorbate: str
    cycle: int
    calculated: float
    finished: dt.datetime | None
    predicted: float | None
    std: float | None
    model_version: int | None


def results(space: str, adsorbate: str, *, profile: str | None = None) -> list[Result]:
    """The unflagged results of a space's jobs for one adsorbate, in the order they finished."""
    from screener.queries import space_jobs

    doc = get_space(space)
    profile = default_profile(space, profile)
    fields_ = {"key": 1, "site": 1, "adsorbate": 1, "cycle": 1, "predicted": 1, "updated": 1}
    jobs = space_jobs(doc, fields_, state="done", profile=profile)
    energies = {
        c["key"]: c
        for c in Calculation._get_collection().find(
            {"kind": "adslab", "profile": profile, "state": "done"},
            {"key": 1, "adsorption_energy": 1, "flags": 1},
        )
    }
    out = []
    for job in jobs:
        if job.get("adsorbate") != adsorbate:
            continue
        calc = energies.get(f"adslab:{job['key']}")
        if calc is None or calc.get("flags"):
            continue
        predicted = job.get("predicted") or {}
        mean, std = predicted.get("mean"), predicted.get("std")
        out.append(
            Result(
                job_key=job["key"],
                site_id=str(job["site"]),
                adsorbate=adsorbate,
                cycle=int(job.get("cycle") or 0),
                calculated=float(calc["adsorption_energy"]),
                finished=job.get("updated"),
                predicted=None if mean is None else float(mean),
                std=None if std is None else float(std),
                model_version=predicted.get("model_version") if mean is not None else None,
            )
        )
    out.sort(key=lambda r: (r.finished or dt.datetime.min, r.job_key))
    return out


def prospective(
    space: str, adsorbate: str, *, profile: str | None = None, found: Sequence[Result] | None = None
) -> list[Prospective]:
    """The results (``found``, else :func:`results`) whose job carries a prediction."""
    found = results(space, adsorbate, profile=profile) if found is None else found
    return [
        Prospective(
            job_key=r.job_key,
            site_id=r.site_id,
            adsorbate=r.adsorbate,
            cycle=r.cycle,
            model_version=r.model_version,
            predicted=r.predicted,
            std=r.std,
            calculated=r.calculated,
            finished=r.finished,
        )
        for r in found
        if r.predicted is not None
    ]


@dataclass(frozen=True)
class CurvePoint:
    """Prospective accuracy of one cycle's picks, at the number of calculations done by then."""

    cycle: int
    calculations: int
    n: int
    mae: float
    coverage90: float | None


Z90 = 1.6448536269514722  # the normal quantile of a central 90% interval


def learning_curve(
    points: Sequence[Prospective], found: Sequence[Result] | None = None
) -> list[CurvePoint]:
    """MAE and 90% coverage of each cycle's prospective predictions, at the calculations done
    by the end of that cycle: every result in ``found`` (random picks too), else the points."""
    by_cycle: dict[int, list[Prospective]] = defaultdict(list)
    for p in points:
        by_cycle[p.cycle].append(p)
    done_by_cycle = Counter(r.cycle for r in (points if found is None else found))
    out = []
    for cycle in sorted(by_cycle):
        group = by_cycle[cycle]
        with_std = [p for p in group if p.std is not None and p.std > 0]
        covered = sum(1 for p in with_std if abs(p.error) <= Z90 * p.std)
        out.append(
            CurvePoint(
                cycle=cycle,
                calculations=sum(n for c, n in done_by_cycle.items() if c <= cycle),
                n=len(group),
                mae=sum(abs(p.error) for p in group) / len(group),
                coverage90=covered / len(with_std) if with_std else None,
            )
        )
    return out


@dataclass(frozen=True)
class CalibrationPoint:
    nominal: float
    observed: float
    n: int


CALIBRATION_LEVELS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99)


def calibration(points: Sequence[Prospective]) -> list[CalibrationPoint]:
    """Observed against nominal coverage of the central normal intervals mean +- z std."""
    from scipy.stats import norm

    usable = [p for p in points if p.std is not None and p.std > 0]
    if not usable:
        return []
    ratios = [abs(p.error) / p.std for p in usable]
    out = []
    for level in CALIBRATION_LEVELS:
        z = float(norm.ppf(0.5 + level / 2))
        out.append(CalibrationPoint(level, sum(r <= z for r in ratios) / len(ratios), len(ratios)))
    return out


@dataclass(frozen=True)
class HitPoint:
    """Results inside the target window by the end of a cycle (cumulative)."""

    cycle: int
    calculations: int  # results done by then (the x of :func:`learning_curve`)
    hits: int


def hits_curve(
    points: Sequence[Result | Prospective], target: float, window: float
) -> list[HitPoint]:
    """Per cycle, the results found so far whose calculated dE lies in ``target +- window``.

    Parameters
    ----------
    points : sequence of Result or Prospective
        Results of one adsorbate (:func:`results`: every pick, random ones too).
    target, window : float
        The adsorbate's target dE and half-width of its window (eV).

    Returns
    -------
    list of HitPoint
        One per cycle with results, oldest first; ``calculations`` counts as
        :func:`learning_curve` does.
    """
    by_cycle: Counter = Counter()
    hits_by_cycle: Counter = Counter()
    for p in points:
        by_cycle[p.cycle] += 1
        hits_by_cycle[p.cycle] += abs(p.calculated - target) <= window
    out, done, found = [], 0, 0
    for cycle in sorted(by_cycle):
        done += by_cycle[cycle]
        found += hits_by_cycle[cycle]
        out.append(HitPoint(cycle=cycle, calculations=done, hits=found))
    return out


# -- a surface and its sites --------------------------------------------------------------------
@dataclass(frozen=True)
class Attempt:
    """One rung of a calculation's retry ladder: why it failed and what the next try changed."""

    step: int
    reason: str
    action: str


@dataclass(frozen=True)
class SiteView:
    site_id: str
    adsorbate: str
    site_type: str
    binding_elements: tuple[str, ...]
    predicted: float | None
    std: float | None
    calculated: float | None
    flags: tuple[str, ...]
    job_state: str | None
    reason: str | None
    calculation_key: str | None
    retries: tuple[Attempt, ...]


@dataclass(frozen=True)
class SurfaceView:
    info: SurfaceInfo
    space: str
    profile: str
    sites: list[SiteView]
    unmodelled: tuple[str, ...]  # adsorbates of the space with no model of the profile yet


def _surrogate(store: Store, model):
    """A model version's surrogate, loaded once per version."""
    from screener.learning import load_model

    key = ("surrogate", model.space, model.adsorbate, model.profile, model.version, model.sha256)
    return _cached(key, lambda: load_model(store, model), ttl=None)


def _site_predictions(store: Store, model, sites: Sequence[dict]) -> dict[str, tuple[float, float]]:
    """Site id -> (mean, std) of a model version for a few sites of its adsorbate, predicted
    from their fingerprints: the numbers its scoring stored, without reading every site's."""
    sites = [s for s in sites if s["adsorbate"] == model.adsorbate]
    if not sites:
        return {}
    mean, std = _surrogate(store, model).predict([s.get("fingerprint") or {} for s in sites])
    return {str(s["_id"]): (float(m), float(d)) for s, m, d in zip(sites, mean, std, strict=True)}


def _attempts(history: Sequence[dict] | None) -> tuple[Attempt, ...]:
    return tuple(
        Attempt(int(h.get("try") or i + 1), str(h.get("reason") or ""), str(h.get("action") or ""))
        for i, h in enumerate(history or ())
    )


def surface_view(
    store: Store, space: str, surface_key: str, *, profile: str | None = None
) -> SurfaceView:
    """A surface of a space: its sites with predicted and calculated dE, flags and retries."""
    doc = get_space(space)
    surface = Surface._get_collection().find_one({"key": surface_key}, {"structure": 0})
    if surface is None or surface.get("bulk") not in set(doc.bulks):
        raise InputError(f"space '{space}' has no surface '{surface_key}'")
    info = _surface_info(surface, None)
    profile = default_profile(space, profile)
    projection = {"adsorbate": 1, "site_type": 1, "binding_elements": 1, "position_key": 1}
    sites = list(
        Site._get_collection().find({"surface": surface["_id"]}, {**projection, "fingerprint": 1})
    )
    predictions: dict[str, tuple[float, float]] = {}
    unmodelled = []
    for adsorbate in doc.adsorbates:
        model = latest_model(space, adsorbate, profile)
        if model is None:
            unmodelled.append(adsorbate)
        else:
            predictions.update(_site_predictions(store, model, sites))
    views = []
    for site in sorted(sites, key=lambda s: (s["adsorbate"], s["site_type"], s["position_key"])):
        sid = str(site["_id"])
        # by site alone (indexed); a filter on profile too would scan every job on SecantusDB
        jobs = Job._get_collection().find(
            {"site": site["_id"]}, {"key": 1, "state": 1, "reason": 1, "profile": 1}
        )
        job = next((j for j in jobs if j.get("profile") == profile), None)
        calc = None
        if job is not None:
            calc = Calculation._get_collection().find_one(
                {"key": f"adslab:{job['key']}"},
                {"adsorption_energy": 1, "flags": 1, "history": 1, "state": 1, "key": 1},
            )
        mean, std = predictions.get(sid, (None, None))
        done = calc is not None and calc.get("state") == "done"
        views.append(
            SiteView(
                site_id=sid,
                adsorbate=site["adsorbate"],
                site_type=site["site_type"],
                binding_elements=tuple(site.get("binding_elements") or ()),
                predicted=_finite(mean),
                std=_finite(std),
                calculated=float(calc["adsorption_energy"]) if done else None,
                flags=tuple(calc.get("flags") or ()) if calc else (),
                job_state=job.get("state") if job else None,
                reason=(job or {}).get("reason") or (calc or {}).get("reason"),
                calculation_key=calc.get("key") if calc else None,
                retries=_attempts(calc.get("history") if calc else None),
            )
        )
    return SurfaceView(info, space, profile, views, tuple(unmodelled))


# -- jobs ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Failure:
    """A failed calculation of a space: which step, why, and the rungs it climbed."""

    key: str
    kind: str
    adsorbate: str | None
    reason: str
    retries: tuple[Attempt, ...]
    site_id: str | None
    updated: dt.datetime | None


@dataclass(frozen=True)
class StepTime:
    """Wall time and ionic steps of one step kind's finished calculations."""

    kind: str
    n: int
    mean_wall_s: float
    total_wall_s: float
    mean_ionic_steps: float | None


@dataclass(frozen=True)
class JobsView:
    profile: str
    states: dict[str, int]
    failures: list[Failure]
    times: list[StepTime]
    retried: int  # finished calculations that needed more than one try


def jobs_view(space: str, *, profile: str | None = None) -> JobsView:
    """A space's jobs by state, its failures with their retry ladders and the time per step."""
    from screener.queries import space_jobs

    doc = get_space(space)
    profile = default_profile(space, profile)
    bulks = set(doc.bulks)
    states = Counter(j["state"] for j in space_jobs(doc, {"state": 1}, profile=profile))
    failures, times, retried = [], [], 0
    projection = {
        "key": 1,
        "kind": 1,
        "adsorbate": 1,
        "reason": 1,
        "history": 1,
        "site": 1,
        "created": 1,
        "wall_time": 1,
        "ionic_steps": 1,
        "bulk": 1,
        "space": 1,
    }
    for kind in CALCULATION_KINDS:
        walls, steps = [], []
        for state in ("done", "failed"):
            for calc in Calculation._get_collection().find(
                {"kind": kind, "profile": profile, "state": state}, projection
            ):
                if kind != "gas" and calc.get("bulk") not in bulks and calc.get("space") != space:
                    continue
                if state == "failed":
                    failures.append(
                        Failure(
                            key=calc["key"],
                            kind=kind,
                            adsorbate=calc.get("adsorbate"),
                            reason=str(calc.get("reason") or "unknown"),
                            retries=_attempts(calc.get("history")),
                            site_id=str(calc["site"]) if calc.get("site") else None,
                            updated=calc.get("created"),
                        )
                    )
                    continue
                retried += bool(calc.get("history"))
                if calc.get("wall_time") is not None:
                    walls.append(float(calc["wall_time"]))
                if calc.get("ionic_steps") is not None:
                    steps.append(int(calc["ionic_steps"]))
        if walls:
            times.append(
                StepTime(
                    kind,
                    len(walls),
                    sum(walls) / len(walls),
                    sum(walls),
                    sum(steps) / len(steps) if steps else None,
                )
            )
    failures.sort(key=lambda f: f.updated or dt.datetime.min, reverse=True)
    return JobsView(profile, dict(states), failures, times, retried)


# -- the overview ------------------------------------------------------------------------------
@dataclass(frozen=True)
class CycleRow:
    number: int
    profile: str
    started: dt.datetime | None
    seconds: float | None
    submitted: int
    timings: dict[str, float] = field(default_factory=dict)


def recent_cycles(space: str, n: int = 5, profile: str | None = None) -> list[CycleRow]:
    """The last ``n`` cycles of a space's daemons (of ``profile`` only, a name or an identity,
    when given), newest first, with their step timings."""
    query = {"space": space}
    if profile is not None:
        query["profile"] = identity(profile)
    out = []
    for cycle in Cycle.objects(**query).order_by("-number").limit(n):
        out.append(
            CycleRow(
                number=cycle.number,
                profile=cycle.profile,
                started=cycle.started,
                seconds=cycle.seconds,
                submitted=int((cycle.counts or {}).get("submitted") or 0),
                timings={k: float(v) for k, v in (cycle.timings or {}).items()},
            )
        )
    return out


FIREWORK_STATES = ("WAITING", "READY", "RESERVED", "RUNNING", "FIZZLED", "COMPLETED")


def fireworks_queue(launchpad: Any) -> dict[str, int]:
    """The FireWorks queue: fireworks per state (all spaces: gas and bulk steps are shared)."""
    counts = Counter(fw.get("state") for fw in launchpad.fireworks.find({}, {"state": 1}))
    out = {s: counts.get(s, 0) for s in FIREWORK_STATES}
    out.update({s: n for s, n in counts.items() if s and s not in out})
    return out


def surface_oid(surface_id: str) -> ObjectId:
    """An ObjectId from a surface id, or InputError."""
    try:
        return ObjectId(surface_id)
    except Exception:
        raise InputError(f"'{surface_id}' is not a surface id") from None
