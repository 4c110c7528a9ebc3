"""Bulk -> slabs -> sites + fingerprints for one bulk: a pure function that runs on dask workers.

For every site and adsorbate the binding atom is placed one bond length above the site; a site where
that places it nearer to some other atom than to its own binding atoms is buried and dropped for
that adsorbate; otherwise the fingerprint is computed from the placed adsorbate, by the same code
that fingerprints relaxed structures.

The result is plain data (lists and dicts); only the seeding process writes it to the store.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict
from typing import Any

import numpy as np
from ase import Atoms

from screener.enumerate.fingerprint import (
    FINGERPRINT_VERSION,
    SlabBonds,
    fingerprint_of_adslab,
    point_distances,
)
from screener.enumerate.sites import SiteCandidate, find_sites
from screener.enumerate.slabs import SlabParams, make_slabs
from screener.settings import ScreenerSettings
from workflows.adsorbates import get_adsorbate, place_adsorbate
from workflows.structures import atoms_from_dict, atoms_to_dict

log = logging.getLogger(__name__)

ENUMERATOR_VERSION = 2  # 2: hcp/fcc judged along the hollow's own normal
CLASH_MARGIN = 0.1  # A
MIN_ADSORBATE_HEIGHT = 0.5  # A above the binding atoms when the bond cannot reach a wide hollow


def slab_params(settings: ScreenerSettings, max_miller: int | None = None) -> SlabParams:
    return SlabParams(
        max_miller=max_miller if max_miller is not None else settings.max_miller,
        min_thickness=settings.slab_min_thickness,
        min_width=settings.slab_min_width,
        max_atoms=settings.slab_max_atoms,
        vacuum=settings.slab_vacuum,
        fix_below=settings.fix_below,
    )


def enumeration_hash(params: SlabParams) -> str:
    """Identifies what an enumeration produced: parameters and algorithm versions."""
    payload = {**asdict(params), "enumerator": ENUMERATOR_VERSION, "fp": FINGERPRINT_VERSION}
    return hashlib.sha1(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:10]


def adsorbate_position(slab: Atoms, site: SiteCandidate, adsorbate: str) -> list[float]:
    """Where the adsorbate's binding atom goes: the point above the site whose distances to the
    binding atoms best match the bond lengths (sum of covalent radii), pulled gently toward the
    site's xy; at least ``MIN_ADSORBATE_HEIGHT`` above the binding atoms."""
    ads = get_adsorbate(adsorbate)
    symbols = slab.get_chemical_symbols()
    anchors = site.binding_positions(slab)
    bonds = np.array([ads.bond_length(symbols[i]) for i in site.binding])
    xy = site.position[:2]
    floor = anchors[:, 2].mean() + MIN_ADSORBATE_HEIGHT
    pull = np.array([[0.3, 0.0, 0.0], [0.0, 0.3, 0.0]])  # weight of staying above the site

    # damped Gauss-Newton on: |point - anchor_i| = bond_i, point_xy = site_xy (weak)
    point = np.array([xy[0], xy[1], anchors[:, 2].max() + bonds.max()])
    for _ in range(50):
        diff = point - anchors
        dist = np.linalg.norm(diff, axis=1)
        residual = np.concatenate([dist - bonds, pull[:, :2] @ (point[:2] - xy)])
        jacobian = np.vstack([diff / dist[:, None], pull])
        step = np.linalg.lstsq(jacobian, -residual, rcond=None)[0]
        length = np.linalg.norm(step)
        if length > 0.5:
            step *= 0.5 / length
        point += step
        if length < 1e-7:
            break
    point[2] = max(point[2], floor)
    return [round(float(v), 4) for v in point]


def _clashes(adslab: Atoms, n_slab: int, binding: list[int]) -> bool:
    """Is a non-binding slab atom nearer the placed binding atom than the binding atoms are?"""
    distances = point_distances(adslab, adslab.positions[n_slab], np.arange(n_slab))
    others = np.delete(distances, binding)
    return bool(len(others) and others.min() < distances[binding].max() - CLASH_MARGIN)


def enumerate_bulk(
    structure: dict[str, Any], adsorbates: list[str], params: SlabParams
) -> dict[str, Any]:
    """Enumerate one bulk: every surface with its sites for every adsorbate (plain data)."""
    bulk = atoms_from_dict(structure)
    slabs, skipped = make_slabs(bulk, params)
    surfaces = []
    for record in slabs:
        slab = record.atoms
        symbols = slab.get_chemical_symbols()
        bonds = SlabBonds.of(slab)
        site_rows = []
        for site in find_sites(slab):
            base = {
                "site_type": site.site_type,
                "position": [round(float(v), 4) for v in site.position],
                "position_key": site.position_key(),
                "binding_atoms": [int(i) for i in site.binding],
                "binding_elements": [symbols[i] for i in site.binding],
                "composition": dict(Counter(symbols[i] for i in site.binding)),
                "multiplicity": int(site.multiplicity),
            }
            for name in adsorbates:
                position = adsorbate_position(slab, site, name)
                adslab = place_adsorbate(slab, name, position)
                if _clashes(adslab, len(slab), site.binding):
                    continue  # buried site: the adsorbate would sit closer to another atom
                row = dict(base, adsorbate=name, adsorbate_position=position)
                row["fingerprint"] = fingerprint_of_adslab(adslab, bonds)
                site_rows.append(row)
        surfaces.append(
            {
                "miller": list(record.miller),
                "termination": record.termination,
                "shift": record.shift,
                "side": record.side,
                "structure": atoms_to_dict(slab),
                "natoms": len(slab),
                "thickness": round(record.thickness, 4),
                "area": round(record.area, 4),
                "repeat": list(record.repeat),
                "top_composition": record.top_composition(),
                "sites": site_rows,
            }
        )
    return {
        "surfaces": surfaces,
        "skipped": [
            {"miller": list(s.miller), "shift": s.shift, "reason": s.reason} for s in skipped
        ],
    }


Task = tuple[str, dict[str, Any]]  # (bulk key, structure)
Outcome = tuple[str, dict[str, Any] | None, str | None]  # (bulk key, result, error)


class Enumerator:
    """Runs :func:`enumerate_bulk` for many bulks; a context manager owning the dask client.

    In this process when ``dask_workers`` is 0 and no scheduler or Slurm cluster is set; otherwise
    on a dask cluster (:func:`screener.cluster.dask_client`: the ``dask_scheduler`` address, a
    Slurm cluster, or a local cluster of ``dask_workers`` processes).
    Entering connects (or starts the cluster), so an unreachable scheduler fails before the caller
    has written anything.
    """

    def __init__(self, settings: ScreenerSettings, n_tasks: int) -> None:
        self.settings = settings
        self.n_tasks = n_tasks
        self.client: Any = None
        self._context: Any = None

    @property
    def in_process(self) -> bool:
        return (
            self.settings.dask_scheduler is None
            and self.settings.dask_cluster == "local"
            and self.settings.dask_workers == 0
        )

    def __enter__(self) -> Enumerator:
        if self.n_tasks == 0 or self.in_process:
            return self
        from screener.cluster import dask_client

        self._context = dask_client(self.settings, min(self.settings.dask_workers, self.n_tasks))
        self.client = self._context.__enter__()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        if self._context is not None:
            self._context.__exit__(*exc_info)
            self._context = self.client = None

    def run(
        self, tasks: list[Task], adsorbates: list[str], params: SlabParams
    ) -> Iterator[Outcome]:
        """Yield outcomes as enumerations finish; one failing bulk does not stop the others."""
        if self.client is None:
            for key, structure in tasks:
                yield _guarded(key, structure, adsorbates, params)
            return
        from dask.distributed import as_completed

        futures = {
            self.client.submit(enumerate_bulk, structure, adsorbates, params, pure=False): key
            for key, structure in tasks
        }
        for future in as_completed(futures):
            try:
                yield futures[future], future.result(), None
            except Exception as exc:
                yield futures[future], None, f"{exc.__class__.__name__}: {exc}"


def _guarded(key: str, structure: dict, adsorbates: list[str], params: SlabParams) -> Outcome:
    try:
        return key, enumerate_bulk(structure, adsorbates, params), None
    except Exception as exc:  # one bad bulk must not stop the others
        log.exception("enumeration of %s failed", key)
        return key, None, f"{exc.__class__.__name__}: {exc}"
