"""Surfaces ranked by how close their binding energy is to a target (Tran & Ulissi 2018).

A surface's binding energy is the minimum over its sites.  Where the surface has finished,
unflagged results of the profile, their minimum is used (``source: "calculated"``, std 0: DFT with
the gpaw profiles, EMT with emt); elsewhere the lowest surrogate mean over its sites, with that
site's std (``source: "predicted"``).  A surface with some calculated sites uses the calculated
value: the sites the loop picked there were chosen as the most promising, so their minimum stands
for the surface.
"""

from __future__ import annotations

from typing import NamedTuple, TypedDict

from bson import ObjectId

from screener.errors import InputError
from screener.learning import default_profile, stored_predictions, usable_results
from screener.queries import by_ids, get_space, of_space
from screener.settings import load_settings
from screener.store import Surface
from screener.store.documents import Calculation


class SurfaceEnergy(TypedDict):
    """A surface's adsorption energy: its lowest calculated site, else the model's prediction."""

    energy: float  # dE, eV
    std: float  # 0 for a calculated surface
    source: str  # "calculated" or "predicted"
    site_id: str
    n_calculated: int


class RankedSurface(TypedDict):
    """One ranked surface."""

    surface: str | None  # the surface key
    surface_id: str
    bulk_formula: str | None
    miller: list[int] | None
    termination: str | None
    adsorbate: str
    energy: float  # dE, eV
    std: float
    source: str  # "calculated" or "predicted"
    site_id: str
    n_calculated: int
    distance: float  # |energy - target|, eV
    in_window: bool
    profile: str
    target: float


class Goal(NamedTuple):
    """What a ranking is against: the adsorbate, the profile whose results count, the target
    and window (eV)."""

    adsorbate: str
    profile: str
    target: float
    window: float


def ranking_goal(
    space: str,
    adsorbate: str | None = None,
    profile: str | None = None,
    target: float | None = None,
    window: float | None = None,
) -> Goal:
    """The adsorbate (default: the space's first), profile (default: the space's most used),
    target and window of a ranking; :class:`InputError` for an unknown space, one without
    ``adsorbate`` sites, or a target or window out of bounds."""
    doc = get_space(space, [adsorbate] if adsorbate else [])
    if adsorbate is None:
        if not doc.adsorbates:
            raise InputError(f"space '{space}' has no adsorbates")
        adsorbate = str(doc.adsorbates[0])
    profile = default_profile(space, profile)
    goal = load_settings().target_window(adsorbate, target, window)
    return Goal(adsorbate, profile, goal.target, goal.window)


def nearest_first(energies: dict[str, SurfaceEnergy], target: float) -> list[tuple[str, float]]:
    """(surface id, |energy - target|) of every surface, nearest the target first (ties by id)."""
    distances = [(sid, abs(row["energy"] - target)) for sid, row in energies.items()]
    return sorted(distances, key=lambda item: (item[1], item[0]))


def surface_energies(space: str, adsorbate: str, profile: str) -> dict[str, SurfaceEnergy]:
    """Surface id -> its energy row, for one adsorbate.

    Reads the space's usable results and the latest model's per-surface predictions: no site is
    read.
    """
    doc = get_space(space)
    out: dict[str, SurfaceEnergy] = {}
    query = usable_results(profile, adsorbate)
    query["site"] = {"$ne": None}
    bulks = set(doc.bulks)
    projection = {"site": 1, "surface": 1, "adsorption_energy": 1}
    for calc in of_space(Calculation._get_collection(), list(doc.bulks), space, query, projection):
        if calc.get("bulk") not in bulks:
            continue  # an import: no site of this space
        site, surface = str(calc["site"]), str(calc["surface"])
        energy = float(calc["adsorption_energy"])
        row = out.setdefault(
            surface,
            SurfaceEnergy(
                energy=energy, std=0.0, source="calculated", site_id=site, n_calculated=0
            ),
        )
        row["n_calculated"] += 1
        if energy < row["energy"]:
            row["energy"], row["site_id"] = energy, site
    predicted = stored_predictions(space, adsorbate, profile, level="surface")
    if predicted is not None:
        for surface, site, mean, std in zip(
            predicted.surfaces, predicted.sites, predicted.mean, predicted.std, strict=True
        ):
            if surface not in out:
                out[surface] = SurfaceEnergy(
                    energy=float(mean),
                    std=float(std),
                    source="predicted",
                    site_id=site,
                    n_calculated=0,
                )
    return out


def surface_docs(ids: list[str]) -> dict[str, dict]:
    return {
        str(s["_id"]): s
        for s in by_ids(
            Surface._get_collection(),
            [ObjectId(i) for i in ids],
            {"key": 1, "bulk_formula": 1, "miller": 1, "termination": 1},
        )
    }


def candidates(
    space: str,
    adsorbate: str | None = None,
    *,
    profile: str | None = None,
    target: float | None = None,
    window: float | None = None,
    limit: int | None = 20,
) -> list[RankedSurface]:
    """Surfaces ranked by |energy - target| (nearest first), for ``adsorbate`` (default: the
    space's first)."""
    if limit is not None and limit < 0:
        raise InputError(f"limit must be >= 0 (got {limit})")
    adsorbate, profile, target, window = ranking_goal(space, adsorbate, profile, target, window)
    energies = surface_energies(space, adsorbate, profile)
    ranked = nearest_first(energies, target)
    ranked = ranked[:limit] if limit else ranked
    docs = surface_docs([surface_id for surface_id, _ in ranked])
    rows: list[RankedSurface] = []
    for surface_id, distance in ranked:
        row, surface = energies[surface_id], docs.get(surface_id, {})
        rows.append(
            RankedSurface(
                surface=surface.get("key"),
                surface_id=surface_id,
                bulk_formula=surface.get("bulk_formula"),
                miller=surface.get("miller"),
                termination=surface.get("termination"),
                adsorbate=adsorbate,
                energy=round(row["energy"], 4),
                std=round(row["std"], 4),
                source=row["source"],
                site_id=row["site_id"],
                n_calculated=row["n_calculated"],
                distance=round(distance, 4),
                in_window=distance <= window,
                profile=profile,
                target=target,
            )
        )
    return rows
