"""Shared adsorption logic, written once for every calculator: gas references, the slab cut from
the relaxed bulk, the adsorbate placed on the relaxed slab, and the adsorption energy.

dE = E(slab+adsorbate) - E(slab) - sum_i c_i E(gas_i), with CO: E(CO) and H: 1/2 E(H2)
(Tran & Ulissi 2018), O: E(H2O) - E(H2) and OH: E(H2O) - 1/2 E(H2) (Norskov et al. 2004);
electronic energies, no ZPE or entropy.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from ase import Atoms

from workflows.adsorbates import get_adsorbate
from workflows.structures import in_plane_shifts

GAS_BOX = 10.0  # A, cubic box for the gas molecules (periodic: plane-wave codes need it)
GAS_GEOMETRIES = {
    "CO": (("C", "O"), ((0.0, 0.0, 0.0), (0.0, 0.0, 1.14))),
    "H2": (("H", "H"), ((0.0, 0.0, 0.0), (0.0, 0.0, 0.75))),
    "H2O": (("O", "H", "H"), ((0.0, 0.0, 0.0), (0.757, 0.0, 0.586), (-0.757, 0.0, 0.586))),
}


def gas_molecule(name: str) -> Atoms:
    """A gas-phase reference molecule near its bond length, centred in a periodic box."""
    try:
        symbols, positions = GAS_GEOMETRIES[name]
    except KeyError:
        known = ", ".join(GAS_GEOMETRIES)
        raise ValueError(f"no gas geometry for '{name}' (known: {known})") from None
    molecule = Atoms(symbols, positions=positions, cell=[GAS_BOX] * 3, pbc=True)
    molecule.center()
    return molecule


def references(adsorbate: str) -> list[tuple[str, float]]:
    """Gas molecules and coefficients of an adsorbate's reference (H: 1/2 H2; OH: H2O - 1/2 H2)."""
    return [(name, float(c)) for name, c in get_adsorbate(adsorbate).reference]


def bulk_scale(initial: dict[str, Any], relaxed: dict[str, Any]) -> float:
    """Linear scale factor from the initial to the relaxed bulk volume per atom."""
    v0 = abs(np.linalg.det(np.array(initial["cell"]))) / len(initial["numbers"])
    v1 = abs(np.linalg.det(np.array(relaxed["cell"]))) / len(relaxed["numbers"])
    return float((v1 / v0) ** (1.0 / 3.0))


def scale_slab(slab: Atoms, scale: float) -> Atoms:
    """The slab cut from a bulk strained isotropically by ``scale``: in-plane cell and positions
    scale, heights scale from the bottom atom and the vacuum above stays as it was."""
    scaled = slab.copy()
    cell = scaled.cell.array.copy()
    z = scaled.positions[:, 2]
    bottom, thickness = z.min(), z.max() - z.min()
    positions = scaled.positions.copy()
    positions[:, :2] *= scale
    positions[:, 2] = bottom + (z - bottom) * scale
    cell[:2, :2] *= scale
    cell[2, 2] += thickness * (scale - 1.0)
    scaled.set_cell(cell)
    scaled.positions = positions
    return scaled


def scale_point(point: list[float], slab: Atoms, scale: float) -> np.ndarray:
    """Where a point above the unrelaxed slab goes under :func:`scale_slab`."""
    bottom = slab.positions[:, 2].min()
    x, y, z = point
    return np.array([x * scale, y * scale, bottom + (z - bottom) * scale])


def place_on_relaxed_slab(
    initial_slab: Atoms,
    relaxed_slab: Atoms,
    adsorbate: str,
    adsorbate_position: list[float],
    binding_atoms: list[int],
) -> Atoms:
    """Put the adsorbate on the relaxed slab where it sat on the initial one, relative to its
    binding atoms (nearest periodic images), so slab relaxation carries the site along."""
    binding_position = np.asarray(adsorbate_position, dtype=float)
    before = _images_near(initial_slab, binding_atoms, binding_position)
    offset = binding_position - before.mean(axis=0)
    after = _images_near(relaxed_slab, binding_atoms, before.mean(axis=0))
    target = after.mean(axis=0) + offset
    return relaxed_slab + get_adsorbate(adsorbate).atoms(target)


def _images_near(slab: Atoms, indices: list[int], point: np.ndarray) -> np.ndarray:
    cell = slab.cell.array
    shifts = in_plane_shifts(cell)
    chosen = []
    for index in indices:
        candidates = slab.positions[index] + shifts
        chosen.append(candidates[np.argmin(np.linalg.norm(candidates - point, axis=1))])
    return np.array(chosen)


def adsorption_energy(
    adslab_energy: float, slab_energy: float, gas_energies: dict[str, float], adsorbate: str
) -> tuple[float, dict[str, float]]:
    """dE and the reference energies used ({molecule: coefficient * energy})."""
    used = {name: c * gas_energies[name] for name, c in references(adsorbate)}
    return adslab_energy - slab_energy - sum(used.values()), used
