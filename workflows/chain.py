"""The bulk -> slab -> adsorbate+slab chain, written once.

Each step is split into what it relaxes (``*_start``) and what it makes of the relaxed result
(``*_outcome``), so that the FireWorks tasks (:mod:`workflows.tasks`, one firework per step,
with the retry ladder around each relaxation) and the tools that run a whole chain in one
process (:func:`run_surface`, used by the EMT pool builder) share every rule: the slab cut from
the relaxed bulk by isotropic strain, the adsorbate placed on the relaxed slab relative to its
binding atoms, the adsorption energy against the adsorbate's gas references, and the anomaly
flags (the slab's flags carry over to each of its adsorbate+slab results).

Inputs and results are dataclasses; structures inside them are ASE ``Atoms`` (the tasks convert
to and from JSON dicts at their boundary).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypedDict

from ase import Atoms

from workflows.adsorption import (
    adsorption_energy,
    bulk_scale,
    gas_molecule,
    place_on_relaxed_slab,
    references,
    scale_point,
    scale_slab,
)
from workflows.anomalies import adslab_anomalies, slab_anomalies
from workflows.calculate import CalculationError
from workflows.structures import atoms_from_dict

#: relax(atoms, profile, kind, workdir=...) -> result dict (energy, atoms, max_force, ...)
Relax = Callable[..., dict[str, Any]]


class SiteSpec(TypedDict):
    """An enumerated site, in the frame of the unrelaxed slab."""

    id: str
    adsorbate: str
    adsorbate_position: list[float]
    binding_atoms: list[int]


@dataclass
class SlabStart:
    """The enumerated slab strained isotropically to the relaxed bulk: the slab step relaxes it."""

    atoms: Atoms
    scale: float


def slab_start(slab: dict, bulk_initial: dict, bulk_relaxed: dict) -> SlabStart:
    """Cut the slab from the relaxed bulk: the enumerated slab (a JSON dict) scaled by the cube
    root of the bulk's volume change."""
    scale = bulk_scale(bulk_initial, bulk_relaxed)
    return SlabStart(atoms=scale_slab(atoms_from_dict(slab), scale), scale=scale)


def slab_flags(start: Atoms, result: dict[str, Any]) -> list[str]:
    """Anomaly flags of a relaxed bare slab (``reconstructed``, ``high_force``)."""
    final = atoms_from_dict(result["atoms"])
    return list(slab_anomalies(start, final, max_force=result.get("max_force"))["flags"])


def adslab_start(site: SiteSpec, slab_initial: Atoms, slab_relaxed: Atoms, scale: float) -> Atoms:
    """The adsorbate placed on the relaxed slab where the site put it on the strained one."""
    # the scaled slab keeps the bottom atom's height, so its bottom anchors the scaling
    point = scale_point(site["adsorbate_position"], slab_initial, scale)
    return place_on_relaxed_slab(
        slab_initial, slab_relaxed, site["adsorbate"], list(point), site["binding_atoms"]
    )


@dataclass
class AdslabOutcome:
    """What an adsorbate+slab relaxation gives: dE (eV) and its checks."""

    adsorption_energy: float
    #: the gas references used, {molecule: coefficient x energy} (eV)
    references: dict[str, float]
    flags: list[str]
    #: the relaxed site as the anomaly checks read it (binding atoms, site kind)
    final_site: dict[str, Any] = field(default_factory=dict)


def adslab_outcome(
    adsorbate: str,
    placed: Atoms,
    result: dict[str, Any],
    slab_energy: float,
    gas_energies: dict[str, float],
    slab_flags_: list[str] = (),
) -> AdslabOutcome:
    """dE against the gas references and the anomaly flags (with the slab's own flags)."""
    energy, used = adsorption_energy(result["energy"], slab_energy, gas_energies, adsorbate)
    final = atoms_from_dict(result["atoms"])
    checks = adslab_anomalies(placed, final, max_force=result.get("max_force"))
    return AdslabOutcome(
        adsorption_energy=float(energy),
        references=used,
        flags=sorted(set(checks["flags"]) | set(slab_flags_)),
        final_site=dict(checks.get("final_site") or {}),
    )


def gas_names(adsorbates: list[str]) -> list[str]:
    """The gas molecules the references of these adsorbates need, in first-use order."""
    return list(dict.fromkeys(name for a in adsorbates for name, _ in references(a)))


def relax_gases(names: list[str], relax: Relax, profile: str, workdir: Path) -> dict[str, float]:
    """Relaxed energies (eV) of gas molecules in their boxes."""
    return {
        name: float(relax(gas_molecule(name), profile, "gas", workdir=workdir / name)["energy"])
        for name in names
    }


@dataclass
class SiteResult:
    """One site of :func:`run_surface`: its relaxed structure and outcome, or why it failed."""

    site: SiteSpec
    placed: Atoms | None = None
    relaxed: Atoms | None = None
    outcome: AdslabOutcome | None = None
    failed: str | None = None


def run_surface(
    bulk: dict,
    slab: dict,
    sites: list[SiteSpec],
    gas_energies: dict[str, float],
    relax: Relax,
    profile: str,
    workdir: Path,
) -> list[SiteResult]:
    """The whole chain for one surface in this process: bulk, slab, then every site.

    ``bulk`` and ``slab`` are the enumerated structures (JSON dicts); ``relax`` is
    :func:`workflows.calculate.relax` or a wrapper of it.  A failed bulk or slab relaxation
    raises :class:`~workflows.calculate.CalculationError`; a failed site is recorded in its
    :class:`SiteResult`.
    """
    bulk_result = relax(atoms_from_dict(bulk), profile, "bulk", workdir=workdir / "bulk")
    start = slab_start(slab, bulk, bulk_result["atoms"])
    slab_result = relax(start.atoms, profile, "slab", workdir=workdir / "slab")
    flags = slab_flags(start.atoms, slab_result)
    relaxed_slab = atoms_from_dict(slab_result["atoms"])
    out = []
    for number, site in enumerate(sites):
        placed = adslab_start(site, start.atoms, relaxed_slab, start.scale)
        try:
            result = relax(placed, profile, "adslab", workdir=workdir / f"adslab{number}")
        except CalculationError as error:
            out.append(SiteResult(site=site, placed=placed, failed=error.reason))
            continue
        outcome = adslab_outcome(
            site["adsorbate"], placed, result, slab_result["energy"], gas_energies, flags
        )
        relaxed = atoms_from_dict(result["atoms"])
        out.append(SiteResult(site=site, placed=placed, relaxed=relaxed, outcome=outcome))
    return out


__all__ = [
    "AdslabOutcome",
    "SiteResult",
    "SiteSpec",
    "SlabStart",
    "adslab_outcome",
    "adslab_start",
    "gas_names",
    "relax_gases",
    "run_surface",
    "slab_flags",
    "slab_start",
]
