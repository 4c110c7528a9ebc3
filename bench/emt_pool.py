"""An EMT-labelled pool of adsorption energies built by the project itself, in-process.

For benchmarks and tests of the surrogate's machinery (not of its accuracy: EMT is a toy
potential, its numbers are not DFT).  Every site of a seeded space goes through the chain a
FireWorks workflow runs, :func:`workflows.chain.run_surface` (bulk relaxed, slab cut from it by
isotropic strain and relaxed, adsorbate placed on the relaxed slab and relaxed, dE against the
adsorbate's gas references, anomaly flags with the slab's own), with the ``emt`` profile but
without FireWorks and the store's ledger, surfaces in parallel processes.  The output is a
labelled extxyz file of relaxed adsorbate+slab structures (adsorbate tagged 0, surface layers
from 1) with ``info`` keys ``E_ads`` (eV), ``adsorbate``, ``surface`` (surface key),
``site_id``, ``bulk_formula``, ``miller``, ``site_type``, ``flags`` and ``initial_binding`` (the
surface atoms the adsorbate was placed on, indices among the surface atoms:
:func:`screener.surrogate.data.read_labelled` knows each row by the fingerprint of that site, as
the loop knows its sites): the shape an external DFT data set has, plus where each relaxation
started.

Imported by bench/cycle.py and bench/surrogate.py (same folder) and by the tests (pytest puts
bench/ on the path).
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
from workflows.calculate import relax
from workflows.chain import gas_names, relax_gases, run_surface
from workflows.structures import atoms_from_dict, atoms_to_dict

PROFILE = "emt"


def gas_energies(adsorbates: list[str], workdir: Path) -> dict[str, float]:
    """EMT energies of the gas references these adsorbates need."""
    return relax_gases(gas_names(adsorbates), relax, PROFILE, workdir)


def label_surface(task: dict[str, Any]) -> list[dict[str, Any]]:
    """Run the chain for one surface and every site on it; returns labelled rows (JSON-safe)."""
    with tempfile.TemporaryDirectory(prefix="emt-pool-") as tmp:
        results = run_surface(
            task["bulk"], task["slab"], task["sites"], task["gas"], relax, PROFILE, Path(tmp)
        )
    rows = []
    for r in results:
        if r.failed is not None:
            rows.append({"site_id": r.site["id"], "failed": r.failed})
            continue
        rows.append(
            {
                "site_id": r.site["id"],
                "atoms": atoms_to_dict(r.relaxed),
                "E_ads": r.outcome.adsorption_energy,
                "adsorbate": r.site["adsorbate"],
                "site_type": task["site_types"][r.site["id"]],
                # slab atoms come first in the placed structure: same indices
                "initial_binding": binding_atoms(r.placed),
                "flags": list(r.outcome.flags),
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
        found = list(Site.objects(surface=surface.id, adsorbate__in=adsorbates))
        sites = [
            {
                "id": str(s.id),
                "adsorbate": s.adsorbate,
                "adsorbate_position": list(s.adsorbate_position),
                "binding_atoms": list(s.binding_atoms),
            }
            for s in found
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
                    "site_types": {str(s.id): s.site_type for s in found},
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
        gas = gas_energies(adsorbates, Path(tmp))
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


__all__ = ["build_pool", "label_surface", "surface_tasks"]
