"""Adsorbates the service knows: geometry, binding atom and gas-phase reference.

Adding one is adding an entry to :data:`ADSORBATES` (and, when its reference needs a gas molecule
not yet known, that molecule's geometry to :data:`workflows.adsorption.GAS_GEOMETRIES`): geometry
with the binding atom at the origin and the molecule pointing along +z, the gas reference, and the
default target dE and window of the screen (settings ``targets`` override them).

Targets: CO -0.67 eV and H -0.27 eV are Tran & Ulissi's (Nat. Catal. 1, 696, 2018).  O and OH
are referenced to H2O and H2 (O = H2O - H2, OH = H2O - 1/2 H2), the oxygen-reduction convention
of Norskov et al. (J. Phys. Chem. B 108, 17886, 2004); their targets are the ORR optimum, about
0.1 eV (OH) and 0.2 eV (O) weaker binding than Pt(111), placed at RPBE-scale values of Pt(111)
(OH about 0.9 eV, O about 1.5 eV against these references).  Check them against the project's own
Pt(111) calculation at the profile in use before a campaign: the offset between codes and
settings is tenths of an eV.
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
    ``target`` and ``window`` (eV) are the screen's default: a hit has |dE - target| <= window.
    """

    name: str
    symbols: tuple[str, ...]
    positions: tuple[tuple[float, float, float], ...]
    reference: tuple[tuple[str, float], ...]
    target: float
    window: float = 0.1

    @property
    def formula(self) -> dict[str, int]:
        """Element counts of the adsorbate (how a labelled file's tag-0 atoms are recognised)."""
        counts: dict[str, int] = {}
        for symbol in self.symbols:
            counts[symbol] = counts.get(symbol, 0) + 1
        return counts

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
    "CO": Adsorbate("CO", ("C", "O"), ((0.0, 0.0, 0.0), (0.0, 0.0, 1.15)), (("CO", 1.0),), -0.67),
    "H": Adsorbate("H", ("H",), ((0.0, 0.0, 0.0),), (("H2", 0.5),), -0.27),
    "O": Adsorbate("O", ("O",), ((0.0, 0.0, 0.0),), (("H2O", 1.0), ("H2", -1.0)), 1.7),
    "OH": Adsorbate(
        "OH", ("O", "H"), ((0.0, 0.0, 0.0), (0.0, 0.0, 0.97)), (("H2O", 1.0), ("H2", -0.5)), 1.0
    ),
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
