"""Adsorbates the service knows: geometry, binding atom and gas-phase reference.

Adding one is adding an entry to :data:`ADSORBATES` (and, for DFT, its gas references to the
workflow): geometry with the binding atom at the origin and the molecule pointing along +z.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from ase import Atoms
from ase.data import atomic_numbers, covalent_radii


@dataclass(frozen=True)
class Adsorbate:
    """An adsorbate: atoms (binding atom first, at the origin) and its gas-phase reference.

    ``reference`` maps gas molecules to coefficients: dE = E(slab+ads) - E(slab) - sum(c * E(gas)).
    """

    name: str
    symbols: tuple[str, ...]
    positions: tuple[tuple[float, float, float], ...]
    reference: tuple[tuple[str, float], ...]

    @property
    def binding_symbol(self) -> str:
        return self.symbols[0]

    def bond_length(self, surface_symbol: str) -> float:
        """Nominal binding-atom to surface-atom distance (sum of covalent radii, A)."""
        return float(
            covalent_radii[atomic_numbers[self.binding_symbol]]
            + covalent_radii[atomic_numbers[surface_symbol]]
        )

    def atoms(self, binding_position: np.ndarray | list[float]) -> Atoms:
        """The adsorbate with its binding atom at ``binding_position``; tagged 0."""
        positions = np.asarray(self.positions) + np.asarray(binding_position, dtype=float)
        return Atoms(self.symbols, positions=positions, tags=[0] * len(self.symbols))


ADSORBATES: dict[str, Adsorbate] = {
    "CO": Adsorbate("CO", ("C", "O"), ((0.0, 0.0, 0.0), (0.0, 0.0, 1.15)), (("CO", 1.0),)),
    "H": Adsorbate("H", ("H",), ((0.0, 0.0, 0.0),), (("H2", 0.5),)),
}


def get_adsorbate(name: str) -> Adsorbate:
    """Look an adsorbate up by name; ValueError naming the supported ones otherwise."""
    try:
        return ADSORBATES[name]
    except KeyError:
        known = ", ".join(ADSORBATES)
        raise ValueError(f"unsupported adsorbate '{name}' (supported: {known})") from None


def place_adsorbate(slab: Atoms, name: str, binding_position: list[float]) -> Atoms:
    """Return slab + adsorbate (tag 0) with the binding atom at ``binding_position``."""
    return slab + get_adsorbate(name).atoms(binding_position)
