"""Plain-dict form of ASE Atoms, the one structure format in the database and in Firework specs.

Only JSON types are used, so a structure survives MongoDB, FireWorks specs and files unchanged.
Adsorbate atoms carry tag 0; surface layers are tagged 1 (top), 2, ... (ASE convention); fixed atoms
are listed by index and restored as an ASE ``FixAtoms`` constraint.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from ase import Atoms
from ase.constraints import FixAtoms


def atoms_to_dict(atoms: Atoms) -> dict[str, Any]:
    """JSON-safe dict of numbers, positions (A), cell (A), pbc, tags and fixed atom indices."""
    fixed: list[int] = []
    for constraint in atoms.constraints:
        if isinstance(constraint, FixAtoms):
            fixed.extend(int(i) for i in constraint.get_indices())
    return {
        "numbers": [int(z) for z in atoms.numbers],
        "positions": np.round(atoms.positions, 8).tolist(),
        "cell": np.round(atoms.cell.array, 8).tolist(),
        "pbc": [bool(p) for p in atoms.pbc],
        "tags": [int(t) for t in atoms.get_tags()],
        "fixed": sorted(set(fixed)),
    }


def atoms_from_dict(data: dict[str, Any]) -> Atoms:
    """Inverse of :func:`atoms_to_dict`."""
    atoms = Atoms(
        numbers=data["numbers"],
        positions=data["positions"],
        cell=data["cell"],
        pbc=data["pbc"],
        tags=data.get("tags"),
    )
    if data.get("fixed"):
        atoms.set_constraint(FixAtoms(indices=data["fixed"]))
    return atoms


def in_plane_shifts(cell: np.ndarray) -> np.ndarray:
    """The 9 lattice translations i*a + j*b (i, j in -1, 0, 1) of a slab periodic in a and b."""
    cell = np.asarray(cell)
    return np.array([i * cell[0] + j * cell[1] for i in (-1, 0, 1) for j in (-1, 0, 1)])
