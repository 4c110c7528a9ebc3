"""Coordination fingerprint of an adsorption site (Tran & Ulissi, Nature Catalysis 1, 696, 2018).

First shell: the surface atoms bonded to the adsorbate's binding atom.  Second shell: the surface
atoms bonded to each first-shell atom (other than the adsorbate), counted once per first-shell atom
they touch.  Each shell is stored per element as ``[symbol, Z, Pauling electronegativity, count]``,
sorted by symbol.  The paper's fourth number, the median adsorption energy of the adsorbate on the
pure element, is joined in by the surrogate's featuriser from the project's own reference
calculations, so that the stored fingerprint is a property of the structure alone.

Version 2 adds coordination numbers (``"cn"``), element-blind: ``binding`` the sorted coordination
numbers of the first-shell atoms, ``second_sum`` and ``second_n`` the sum and number of the
coordination numbers of the second-shell atoms, without the site's bonds between its own binding
atoms (counted per binding atom they touch, as the second shell is; periodic images count, so a
2x2 cell gives what a 4x4 one does).  ``second_sum / 12`` is the generalized coordination number
of Calle-Vallejo et al. (Angew. Chem. Int. Ed. 53, 8316, 2014) with the fcc bulk's 12; the
featuriser derives its descriptors from these integers.

One code path serves enumerated sites and relaxed structures: :func:`fingerprint_from_binding`
takes the binding atoms, :func:`fingerprint_of_adslab` finds them in an adsorbate+slab (adsorbate
tagged 0) and calls it.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from functools import cache

import numpy as np
from ase import Atoms
from ase.data import atomic_numbers, covalent_radii

from workflows import bonding
from workflows.bonding import point_distances as point_distances  # re-exported (pipeline)

FINGERPRINT_VERSION = 3


@cache
def pauling(symbol: str) -> float:
    from pymatgen.core.periodic_table import Element

    value = Element(symbol).X
    return float(value) if value == value else 0.0  # NaN for elements without a value


def _shell(symbols: list[str]) -> list[list]:
    counts = Counter(symbols)
    return [[s, atomic_numbers[s], pauling(s), counts[s]] for s in sorted(counts)]


@dataclass
class SlabBonds:
    """Metal-metal bonds of a slab, computed once per slab (:func:`workflows.bonding.bonds`).

    ``neighbours[i]`` lists the atoms bonded to atom ``i``, an atom once per bonded periodic
    image, so a 2x2 cell counts what a 4x4 one does.
    """

    symbols: list[str]
    neighbours: list[np.ndarray]

    @classmethod
    def of(cls, slab: Atoms) -> SlabBonds:
        return cls(slab.get_chemical_symbols(), bonding.bonds(slab).neighbours)


def fingerprint_from_binding(
    slab: Atoms, binding: list[int], bonds: SlabBonds | None = None
) -> dict:
    """Fingerprint from the slab (surface atoms only) and the indices of the binding atoms.

    Neighbours are counted with their periodic images, so a small cell counts what a big one does.
    Pass ``bonds`` (:meth:`SlabBonds.of` the slab) to reuse them across the sites of one slab.
    """
    bonds = bonds or SlabBonds.of(slab)
    second = [bonds.symbols[j] for b in binding for j in bonds.neighbours[b]]
    outer = []  # second-shell atoms other than the site's own binding atoms
    for b in binding:
        partners = [c for c in binding if c != b]
        for j in map(int, bonds.neighbours[b]):
            if j in partners:  # the site's own bond to another binding atom, once (a small
                partners.remove(j)  # cell may list further images of it, which count)
            else:
                outer.append(j)
    return {
        "version": FINGERPRINT_VERSION,
        "first": _shell([bonds.symbols[b] for b in binding]),
        "second": _shell(second),
        "cn": {
            "binding": sorted(len(bonds.neighbours[b]) for b in binding),
            "second_sum": sum(len(bonds.neighbours[j]) for j in outer),
            "second_n": len(outer),
        },
    }


def binding_atoms(adslab: Atoms) -> list[int]:
    """Surface atoms bonded to the adsorbate's binding atom (its atom nearest the slab).

    The adsorbate rule of :func:`workflows.bonding.bonded_to_point`: closer than 1.25 x the sum
    of covalent radii, or than 1.15 x the distance to the nearest surface atom (always bonded
    while within 1.5 x their radii sum; beyond it the adsorbate has desorbed: nothing is).
    The relative rule finds the site where the adsorbate sits farther out than covalent radii
    say: EMT keeps H 2.2-2.3 A from the atoms of a bridge or hollow (1.35-1.4 x the radii sum),
    which the absolute rule alone read as an ontop site.
    """
    tags = adslab.get_tags()
    ads = np.nonzero(tags == 0)[0]
    surf = np.nonzero(tags > 0)[0]
    if len(ads) == 0 or len(surf) == 0:
        raise ValueError("needs adsorbate atoms tagged 0 and surface atoms tagged >= 1")
    lowest = ads[np.argmin(adslab.positions[ads, 2])]
    radius = float(covalent_radii[adslab.numbers[lowest]])
    point = adslab.positions[lowest]
    return bonding.bonded_to_point(adslab, point, radius, surf, images=False).atoms


def fingerprint_of_adslab(
    adslab: Atoms, bonds: SlabBonds | None = None, binding: list[int] | None = None
) -> dict:
    """Fingerprint of an adsorbate+slab (adsorbate tagged 0), enumerated or relaxed.

    ``bonds`` may carry the bare slab's bonds (slab atoms first, in the same order).  ``binding``
    (indices among the surface atoms) names the site instead of the adsorbate's position: the
    site a relaxation started from.
    """
    surface = np.nonzero(adslab.get_tags() > 0)[0]
    if binding is None:
        index = {old: new for new, old in enumerate(surface)}
        binding = [index[b] for b in binding_atoms(adslab)]
    return fingerprint_from_binding(adslab[surface], binding, bonds)
