"""An EMT-labelled pool of adsorption energies built by the project itself, in-process.

For benchmarks and tests of the surrogate: every site of a seeded space goes through the same
chain as a FireWorks workflow (bulk relaxed, slab cut from it by isotropic strain and relaxed,
adsorbate placed on the relaxed slab and relaxed, dE against CO(g) and 1/2 H2(g)), with the
``emt`` profile and the same :mod:`workflows` functions, but without FireWorks and the store's
ledger, surfaces in parallel processes.  The output is a labelled extxyz file of relaxed
adsorbate+slab structures (adsorbate tagged 0, surface layers from 1) with ``info`` keys
``E_ads`` (eV), ``adsorbate``, ``surface`` (surface key), ``site_id``, ``bulk_formula``,
``miller``, ``site_type``, ``flags`` and ``initial_binding`` (the surface atoms the adsorbate was
placed on, indices among the surface atoms: :func:`screener.surrogate.data.read_labelled` knows
each row by the fingerprint of that site, as the loop knows its sites): the shape an external DFT
data set would have, plus where each relaxation started.

EMT is a toy potential: its numbers test the machinery, they are not DFT.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from ase import Atoms

from screener.enumerate.fingerprint import binding_atoms
from workflows.adsorption import (
    adsorption_energy,
    bulk_scale,
    gas_molecule,
    place_on_relaxed_slab,
    scale_point,
    scale_slab,
)
from workflows.anomalies import adslab_anomalies
from workflows.calculate import CalculationError, relax
from workflows.structures import atoms_from_dict, atoms_to_dict

PROFILE = "emt"


def gas_energies(workdir: Path) -> dict[str, float]:
    return {
        name: relax(gas_molecule(name), PROFILE, "gas", workdir=workdir / name)["energy"]
        for name in ("CO", "H2")
    }


def label_surface(task: dict[str, Any]) -> list[dict[str, Any]]:
    """Relax one surface's slab and every site on it; returns labelled rows (JSON-safe)."""
    with tempfile.TemporaryDirectory(prefix="emt-pool-") as tmp:
        work = Path(tmp)
        bulk = relax(atoms_from_dict(task["bulk"]), PROFILE, "bulk", workdir=work / "bulk")
        scale = bulk_scale(task["bulk"], bulk["atoms"])
        initial = scale_slab(atoms_from_dict(task["slab"]), scale)
        slab = relax(initial, PROFILE, "slab", workdir=work / "slab")
        relaxed = atoms_from_dict(slab["atoms"])
        rows = []
        for site in task["sites"]:
            point = scale_point(site["adsorbate_position"], atoms_from_dict(task["slab"]), scale)
            placed = place_on_relaxed_slab(
                initial, relaxed, site["adsorbate"], list(point), site["binding_atoms"]
            )
            try:
                result = relax(placed, PROFILE, "adslab", workdir=work / "adslab")
            except CalculationError as error:
                rows.append({"site_id": site["id"], "failed": error.reason})
                continue
            energy, _ = adsorption_energy(
                result["energy"], slab["energy"], task["gas"], site["adsorbate"]
            )
            final = atoms_from_dict(result["atoms"])
            checks = adslab_anomalies(placed, final, max_force=result["max_force"])
            initial_binding = binding_atoms(placed)  # slab atoms come first: same indices
            rows.append(
                {
                    "site_id": site["id"],
                    "atoms": result["atoms"],
                    "E_ads": float(energy),
                    "adsorbate": site["adsorbate"],
                    "site_type": site["site_type"],
                    "initial_binding": initial_binding,
                    "flags": sorted(checks["flags"]),
                }
            )
        return rows


def surface_tasks(space: str, adsorbates: list[str], gas: dict[str, float]) -> list[dict]:
    """One task per surface of a seeded space (the store must be open)."""
    from screener.queries import get_space
    from screener.store import Bulk, Site, Surface

    bulk_ids = list(get_space(space).bulks)
    bulks = {b.id: b for b in Bulk.objects(id__in=bulk_ids)}
    tasks = []
    for surface in Surface.objects(bulk__in=bulk_ids).order_by("key"):
        sites = [
            {
                "id": str(s.id),
                "adsorbate": s.adsorbate,
                "site_type": s.site_type,
                "adsorbate_position": list(s.adsorbate_position),
                "binding_atoms": list(s.binding_atoms),
            }
            for s in Site.objects(surface=surface.id, adsorbate__in=adsorbates)
        ]
        if sites:
            tasks.append(
                {
                    "surface": surface.key,
                    "bulk_formula": surface.bulk_formula,
                    "miller": list(surface.miller),
                    "bulk": bulks[surface.bulk.id].structure,
                    "slab": surface.structure,
                    "sites": sites,
                    "gas": gas,
                }
            )
    return tasks


def build_pool(
    space: str,
    adsorbates: list[str],
    out: str | Path,
    *,
    processes: int = 2,
    on_surface: Callable[[int], None] | None = None,
) -> dict[str, int]:
    """Label every site of ``space`` with EMT and write ``out`` (extxyz); the store must be open.

    Returns counts: surfaces, labelled sites, failed relaxations.
    """
    from ase.io import write

    with tempfile.TemporaryDirectory(prefix="emt-gas-") as tmp:
        gas = gas_energies(Path(tmp))
    tasks = surface_tasks(space, adsorbates, gas)
    frames: list[Atoms] = []
    failed = 0

    def collect(task: dict, rows: list[dict]) -> None:
        nonlocal failed
        for row in rows:
            if "failed" in row:
                failed += 1
                continue
            atoms = atoms_from_dict(row["atoms"])
            atoms.info.update(
                E_ads=row["E_ads"],
                adsorbate=row["adsorbate"],
                surface=task["surface"],
                site_id=row["site_id"],
                bulk_formula=task["bulk_formula"],
                miller=json.dumps(task["miller"]),
                site_type=row["site_type"],
                initial_binding=json.dumps(row["initial_binding"]),
                flags=json.dumps(row["flags"]),
            )
            frames.append(atoms)
        if on_surface:
            on_surface(len(rows))

    if processes <= 1:
        for task in tasks:
            collect(task, label_surface(task))
    else:
        with ProcessPoolExecutor(processes) as pool:
            for task, rows in zip(tasks, pool.map(label_surface, tasks, chunksize=1), strict=True):
                collect(task, rows)
    atoms_out = Path(out)
    atoms_out.parent.mkdir(parents=True, exist_ok=True)
    write(atoms_out, frames, format="extxyz")
    return {"surfaces": len(tasks), "labelled": len(frames), "failed": failed}


__all__ = ["build_pool", "label_surface", "surface_tasks", "atoms_to_dict"]
