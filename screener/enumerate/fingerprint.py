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

Version 6 adds ``"layers"``: the element fractions of the slab's top :data:`LAYER_DEPTH` layers
(tags 1, 2, 3), the same for every site of a surface.  The local zones say which atoms touch the
site; the layers carry the longer-range ligand and strain effects of the composition under it,
which one facet of many alloys varies and the zones do not see.

Version 7 adds ``"bonds"``: the metal-metal bonds around the site counted by element pair, which
say how the elements of the zones are arranged: ``binding_ring`` and ``binding_below`` the bonds
from each binding atom to the ring and to the layer below (``"A-B"``, A the binding atom's
element), ``ring_ring`` the bonds between ring atoms and ``binding_binding`` the pairs of binding
atoms (``"A-B"`` with A <= B).  Counts of the zones alone cannot tell a Ru binding atom with Ag
neighbours in a Ru-Ag hollow from an Ag one with Ru neighbours.

Version 8 goes one layer deeper: the zones ``below2`` (the atoms bonded to the ``below`` zone,
in the layer under it) and ``below2_shared`` (those bonded to at least two ``below`` atoms: on
fcc(111) the three third-layer atoms under the hollows around a top site, which sit closest to
it).  Sites alike in every zone and bond above can differ in the atoms under the ones under
them: on Ag-Ru, whether Ru or Ag fills that layer changes how strongly OH binds on top.

One code path serves enumerated sites and relaxed structures: :func:`fingerprint_from_binding`
takes the binding atoms, :func:`fingerprint_of_adslab` finds them in an adsorbate+slab (adsorbate
tagged 0) and calls it.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache

import numpy as np
from ase import Atoms
from ase.data import atomic_numbers, covalent_radii

from workflows import bonding
from workflows.bonding import point_distances as point_distances  # re-exported (pipeline)

FINGERPRINT_VERSION = 8
LAYER_DEPTH = 3  # top layers whose composition a fingerprint records (version 6)


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
    #: per atom, the cell offset (a, b) of each bonded image, aligned with ``neighbours``
    offsets: list[np.ndarray] = field(default_factory=list)
    #: height of every atom along the surface normal (A): its layer's mean height when tagged
    heights: np.ndarray = field(default_factory=lambda: np.zeros(0))
    #: in-plane cell vectors a and b (A), to place images
    plane: np.ndarray = field(default_factory=lambda: np.zeros((2, 3)))

    @classmethod
    def of(cls, slab: Atoms) -> SlabBonds:
        found = bonding.bonds(slab)
        cell = np.asarray(slab.cell.array, dtype=float)
        normal = np.cross(cell[0], cell[1])
        normal /= np.linalg.norm(normal)
        return cls(
            symbols=slab.get_chemical_symbols(),
            neighbours=found.neighbours,
            offsets=[np.asarray(o, dtype=int)[:, :2] for o in found.offsets],
            heights=_layer_heights(slab, normal),
            plane=cell[:2].copy(),
        )


def _layer_heights(slab: Atoms, normal: np.ndarray) -> np.ndarray:
    """Each atom's height along the normal, as the mean height of its layer (tag) when tagged.

    Relaxation moves single atoms by tenths of an angstrom but keeps the layers: zones read
    from layer heights are the same on the placed and on the relaxed slab.
    """
    heights = slab.positions @ normal
    tags = slab.get_tags()
    if len(tags) and (tags > 0).all():
        means = {t: heights[tags == t].mean() for t in np.unique(tags)}
        heights = np.array([means[t] for t in tags])
    return heights


ZONES = ("binding", "ring", "below", "ring2", "ring_shared", "below_shared", "ring2_shared")
DEEP_ZONES = ("below2", "below2_shared")  # version 8
BOND_KINDS = ("binding_ring", "binding_below", "ring_ring", "binding_binding")  # version 7
IMAGE_SLACK = 1.5  # A: images of a binding atom this much farther than its nearest are candidates
ZONE_DEPTH = 0.6  # A below the lowest binding atom: deeper neighbours are the layer under the site

Node = tuple[int, int, int]  # atom index and the (a, b) cell offset of its image


def zones(
    slab: Atoms, binding: list[int], bonds: SlabBonds, point: np.ndarray | None = None
) -> tuple[dict, dict]:
    """Per-element counts in zones around a site, and the bonds between them by element pair
    (with periodic images, as the shells are).

    ``binding``: the binding atoms, as the most compact set of their images near ``point`` (the
    adsorbate's binding atom; default: the first binding atom).  ``ring``: the other atoms
    bonded to them, not deeper than ``ZONE_DEPTH`` below the lowest binding atom; ``below``:
    those deeper (the layer under the site); ``ring2``: atoms bonded to the ring, outside the
    zones before, not deeper either; ``below2``: atoms bonded to ``below``, more than
    ``ZONE_DEPTH`` under its lowest atom (the next layer down).  ``*_shared``: the atoms of a zone
    bonded to at least two atoms of the zone inside it (across a hollow's edge, under a bridge,
    the second ring's near atoms, the deeper layer's atoms nearest the site), which tells where
    in the zone an element sits.
    """
    plane = bonds.plane
    to_fractional = np.linalg.pinv(plane.T)  # in-plane Cartesian -> (a, b) coordinates
    steps = np.array([(p, q) for p in (-1, 0, 1) for q in (-1, 0, 1)])
    origin = slab.positions[binding[0]] if point is None else np.asarray(point, dtype=float)
    choices = []  # per binding atom: its images near the origin, (node, position)
    for b in binding:
        delta = slab.positions[b] - origin
        offsets = steps - np.rint(to_fractional @ delta)
        places = origin + delta + offsets @ plane
        reach = np.linalg.norm(places - origin, axis=1)
        near = np.nonzero(reach <= reach.min() + IMAGE_SLACK)[0]
        choices.append(
            [((int(b), int(offsets[k][0]), int(offsets[k][1])), places[k]) for k in near]
        )
    # the most compact set of images (a site's atoms are mutual neighbours), nearest the origin
    # on a tie: in a 2x2 cell the same three atoms make an fcc and an hcp hollow
    best = min(
        itertools.product(*choices),
        key=lambda combo: (
            round(
                max(
                    (
                        float(np.linalg.norm(x[1] - y[1]))
                        for x, y in itertools.combinations(combo, 2)
                    ),
                    default=0.0,
                ),
                3,
            ),
            float(np.linalg.norm(np.mean([c[1] for c in combo], axis=0) - origin)),
        ),
    )
    seeds: set[Node] = {node for node, _ in best}

    def around(nodes: set[Node]) -> Counter:
        return Counter(other for node in nodes for other in _bonded(node, bonds))

    floor = min(bonds.heights[b] for b in binding) - ZONE_DEPTH
    first = around(seeds)
    ring = {n for n in first if n not in seeds and bonds.heights[n[0]] >= floor}
    below = {n for n in first if n not in seeds and bonds.heights[n[0]] < floor}
    second = around(ring)
    ring2 = {n for n in second if n not in seeds | ring | below and bonds.heights[n[0]] >= floor}
    deep = around(below)
    floor2 = min((bonds.heights[n[0]] for n in below), default=floor) - ZONE_DEPTH
    below2 = {n for n in deep if bonds.heights[n[0]] < floor2}
    members = {
        "binding": seeds,
        "ring": ring,
        "below": below,
        "ring2": ring2,
        "ring_shared": {n for n in ring if first[n] >= 2},
        "below_shared": {n for n in below if first[n] >= 2},
        "ring2_shared": {n for n in ring2 if second[n] >= 2},
        "below2": below2,
        "below2_shared": {n for n in below2 if deep[n] >= 2},
    }
    counts = {
        zone: dict(sorted(Counter(bonds.symbols[n[0]] for n in nodes).items()))
        for zone, nodes in members.items()
    }
    return counts, _bond_counts(seeds, ring, below, bonds)


def _bonded(node: Node, bonds: SlabBonds) -> Iterator[Node]:
    """The atom images bonded to an atom image."""
    i, p, q = node
    for j, (dp, dq) in zip(bonds.neighbours[i], bonds.offsets[i], strict=True):
        yield (int(j), p + int(dp), q + int(dq))


def _bond_counts(seeds: set[Node], ring: set[Node], below: set[Node], bonds: SlabBonds) -> dict:
    """Bonds from the binding atoms to the ring and below, within the ring, and binding pairs."""
    found: dict[str, Counter] = {kind: Counter() for kind in BOND_KINDS}
    symbol = bonds.symbols
    for node in seeds:
        for other in _bonded(node, bonds):
            kind = "binding_ring" if other in ring else "binding_below" if other in below else None
            if kind is not None:
                found[kind][f"{symbol[node[0]]}-{symbol[other[0]]}"] += 1
    for node in ring:
        for other in _bonded(node, bonds):
            if other in ring and node < other:  # each bond once
                found["ring_ring"]["-".join(sorted((symbol[node[0]], symbol[other[0]])))] += 1
    for a, b in itertools.combinations(sorted(seeds), 2):
        found["binding_binding"]["-".join(sorted((symbol[a[0]], symbol[b[0]])))] += 1
    return {kind: dict(sorted(c.items())) for kind, c in found.items()}


def fingerprint_from_binding(
    slab: Atoms,
    binding: list[int],
    bonds: SlabBonds | None = None,
    point: np.ndarray | None = None,
) -> dict:
    """Fingerprint from the slab (surface atoms only) and the indices of the binding atoms.

    Neighbours are counted with their periodic images, so a small cell counts what a big one does.
    Pass ``bonds`` (:meth:`SlabBonds.of` the slab) to reuse them across the sites of one slab,
    and ``point``, the adsorbate's binding atom, to place the site's images (:func:`zones`).
    """
    bonds = bonds or SlabBonds.of(slab)
    if binding:
        zone_counts, bond_counts = zones(slab, binding, bonds, point)
    else:
        zone_counts = {z: {} for z in ZONES + DEEP_ZONES}
        bond_counts = {k: {} for k in BOND_KINDS}
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
        "zones": zone_counts,
        "layers": layer_composition(slab),
        "bonds": bond_counts,
    }


def layer_composition(slab: Atoms, depth: int = LAYER_DEPTH) -> list[dict[str, float]]:
    """Element fractions of the top ``depth`` layers of a slab (tags 1, 2, ...; a layer without
    atoms is ``{}``), rounded to 4 digits so that equal layers give equal fingerprints."""
    tags = slab.get_tags()
    symbols = np.asarray(slab.get_chemical_symbols())
    out = []
    for layer in range(1, depth + 1):
        counts = Counter(symbols[tags == layer].tolist())
        total = sum(counts.values())
        out.append({e: round(n / total, 4) for e, n in sorted(counts.items())} if total else {})
    return out


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
    tags = adslab.get_tags()
    surface = np.nonzero(tags > 0)[0]
    adsorbate = np.nonzero(tags == 0)[0]
    if len(adsorbate) == 0 or len(surface) == 0:
        raise ValueError("needs adsorbate atoms tagged 0 and surface atoms tagged >= 1")
    point = adslab.positions[adsorbate[np.argmin(adslab.positions[adsorbate, 2])]]
    if binding is None:
        index = {old: new for new, old in enumerate(surface)}
        binding = [index[b] for b in binding_atoms(adslab)]
    return fingerprint_from_binding(adslab[surface], binding, bonds, point)
