"""The one bonding module: metal-metal bonds, the adsorbate rule, images and minimum images."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from ase import Atoms
from ase.build import add_adsorbate, bcc100, fcc100, fcc110, fcc111, fcc211, hcp0001
from ase.neighborlist import neighbor_list

from workflows import bonding

LATTICE = {"Cu": 3.61, "Pt": 3.92, "Ag": 4.09}
BUILDERS = {"111": fcc111, "100": fcc100, "110": fcc110}
#: coordination number by layer from the top for the facets: first, second, then bulk (12)
FACET_CN = {"111": (9, 12), "100": (8, 12), "110": (7, 11)}


def _by_layer(atoms: Atoms) -> list[set[int]]:
    """The coordination numbers in each layer (ASE tags: 1 is the top layer)."""
    cn = bonding.coordination_numbers(atoms)
    tags = atoms.get_tags()
    return [set(cn[tags == t].tolist()) for t in sorted(set(tags.tolist()))]


def _shells(atoms: Atoms) -> tuple[set, set]:
    """(i, j, offset) of first-neighbour pairs (at the lattice's d_nn) and of farther pairs."""
    d_nn = float(bonding.shortest_bonds(atoms).min())
    probe = atoms.copy()
    probe.pbc = (True, True, False)
    i, j, d, shift = neighbor_list("ijdS", probe, 1.6 * d_nn)
    first = {(a, b, tuple(s)) for a, b, x, s in zip(i, j, d, shift, strict=True) if x < 1.01 * d_nn}
    farther = {
        (a, b, tuple(s)) for a, b, x, s in zip(i, j, d, shift, strict=True) if x > 1.3 * d_nn
    }
    return first, farther


def _bonded(atoms: Atoms) -> set:
    b = bonding.bonds(atoms)
    return {
        (i, int(j), tuple(int(v) for v in s))
        for i in range(len(atoms))
        for j, s in zip(b.neighbours[i], b.offsets[i], strict=True)
    }


@pytest.mark.parametrize("element", sorted(LATTICE))
@pytest.mark.parametrize("facet", sorted(BUILDERS))
def test_facet_coordination(element: str, facet: str) -> None:
    slab = BUILDERS[facet](element, (2, 2, 6), a=LATTICE[element], vacuum=8.0)
    layers = _by_layer(slab)
    top, second = FACET_CN[facet]
    assert layers[0] == layers[-1] == {top}  # both faces (tag 1 top, highest tag bottom)
    assert layers[1] == layers[-2] == {second}
    assert all(layer == {12} for layer in layers[2:-2])


@pytest.mark.parametrize("element", sorted(LATTICE))
def test_stepped_fcc211(element: str) -> None:
    """Step edge 7, terrace 9, step foot 10, bulk 12."""
    slab = fcc211(element, (3, 3, 4), a=LATTICE[element], vacuum=8.0)
    cn = bonding.coordination_numbers(slab)
    z = slab.positions[:, 2]
    top_rows = np.argsort(-z, kind="stable")[:9]
    assert sorted(cn[top_rows].tolist()) == [7] * 3 + [9] * 3 + [10] * 3
    assert set(cn.tolist()) == {7, 9, 10, 12}


@pytest.mark.parametrize("alloy", [("Ag", "Ru"), ("Ag", "Ir"), ("Pd", "Pt")])
@pytest.mark.parametrize("a", [3.9, 4.0])
@pytest.mark.parametrize("facet", ["111", "100", "110", "211"])
def test_alloy_of_mixed_radii_bonds_first_neighbours_only(alloy, a, facet) -> None:
    """Covalent radii 1.45 (Ag) vs 1.46/1.41 (Ru/Ir), 1.39/1.36 (Pd/Pt) on one fcc lattice."""
    builder = {**BUILDERS, "211": fcc211}[facet]
    slab = builder("Cu", (3, 2, 6) if facet == "211" else (2, 2, 6), a=a, vacuum=8.0)
    rng = np.random.default_rng(7)
    slab.set_chemical_symbols(list(rng.choice(alloy, size=len(slab))))
    first, farther = _shells(slab)
    bonded = _bonded(slab)
    assert first <= bonded
    assert not (farther & bonded)
    if facet != "211":
        top, second = FACET_CN[facet]
        layers = _by_layer(slab)
        assert layers[0] == {top} and layers[1] == {second}


def test_stretched_bond_of_a_relaxed_close_packed_alloy_is_kept() -> None:
    """An Ag atom pushed out of an Ir(111) surface: its bond to the Ag below stretches beyond
    1.12 x its shortest bond, and the close-packed rule (covalent radii x 1.2) keeps it."""
    slab = fcc111("Ir", (3, 3, 4), a=3.84, vacuum=8.0)
    z = slab.positions[:, 2]
    top = int(np.argmax(z))
    layer2 = np.nonzero(np.isclose(z, np.unique(np.round(z, 3))[-2], atol=1e-3))[0]
    below = int(layer2[np.argmin(bonding.point_distances(slab, slab.positions[top], layer2))])
    slab[top].symbol = slab[below].symbol = "Ag"
    slab.positions[top, 2] += 0.75
    stretched = bonding.pair_distance(slab, top, below)
    assert stretched > 1.12 * bonding.shortest_bonds(slab)[top]
    found = bonding.bonds(slab)
    assert below in found.neighbours[top].tolist() and top in found.neighbours[below].tolist()
    assert sorted(found.coordination[layer2].tolist())[-1] == 12  # bulk layers: first shell only


def test_bcc_second_neighbours_are_not_bonded() -> None:
    """bcc second neighbours sit at 1.155 x the first: 4 on bcc(100), 8 in the bulk."""
    assert _by_layer(bcc100("Fe", (2, 2, 5), vacuum=8.0)) == [{4}, {8}, {8}, {8}, {4}]


def test_hcp0001() -> None:
    assert _by_layer(hcp0001("Ru", (2, 2, 4), vacuum=8.0)) == [{9}, {12}, {12}, {9}]


@pytest.mark.parametrize("builder", [fcc111, fcc100])
def test_small_cell_counts_what_a_large_one_does(builder) -> None:
    """Bonds to periodic images count: 1x1 and 2x2 cells give the 4x4 cell's numbers."""
    counts = []
    for n in (1, 2, 4):
        slab = builder("Cu", (n, n, 4), a=3.61, vacuum=8.0)
        b = bonding.bonds(slab)
        tags = slab.get_tags()
        counts.append(
            [sorted({len(b.neighbours[i]) for i in np.flatnonzero(tags == t)}) for t in (1, 2)]
        )
    assert counts[0] == counts[1] == counts[2]
    one = builder("Cu", (1, 1, 4), a=3.61, vacuum=8.0)
    b = bonding.bonds(one)
    top = int(np.flatnonzero(one.get_tags() == 1)[0])
    own_images = 4 if builder is fcc100 else 6  # its in-plane neighbours are its own images
    assert list(b.neighbours[top]).count(top) == own_images


def test_c_is_not_periodic_whatever_pbc_says() -> None:
    """A slab with almost no vacuum: its top and bottom layers do not bond across c."""
    slab = fcc111("Cu", (2, 2, 3), a=3.61)  # c = 3 layers, no vacuum
    slab.pbc = True
    assert _by_layer(slab) == [{9}, {12}, {9}]


def test_hydrogen_held_far_out_in_a_hollow_is_bonded_to_its_three_atoms() -> None:
    """EMT keeps H 2.2-2.3 A from hollow atoms: beyond 1.25 x the radii sum (2.04 A for Cu-H),
    within the relative rule's reach (1.5 x, 2.45 A)."""
    slab = fcc111("Cu", (2, 2, 4), a=3.61, vacuum=10.0)
    in_plane = 3.61 / np.sqrt(2) / np.sqrt(3)  # hollow centre to its atoms, in the plane
    add_adsorbate(slab, "H", float(np.sqrt(2.25**2 - in_plane**2)), "fcc")
    h, surface = len(slab) - 1, np.arange(len(slab) - 1)
    d = bonding.point_distances(slab, slab.positions[h], surface)
    assert np.sort(d)[:3] == pytest.approx([2.25] * 3)
    assert d.min() > bonding.ADSORBATE_BOND_FACTOR * (0.31 + 1.32)
    bonds = bonding.bonded_to_point(slab, slab.positions[h], 0.31, surface)
    assert len(bonds) == 3
    assert bonds.atoms == sorted(int(i) for i in np.argsort(d)[:3])
    assert bonds.distances == pytest.approx([2.25] * 3)
    fast = bonding.bonded_to_point(slab, slab.positions[h], 0.31, surface, images=False)
    assert fast.atoms == bonds.atoms


def test_adsorbate_out_of_reach_is_bonded_to_nothing() -> None:
    slab = fcc111("Cu", (2, 2, 4), a=3.61, vacuum=10.0)
    top = slab.positions[np.argmax(slab.positions[:, 2])]
    surface = np.arange(len(slab))
    radii_sum = 0.31 + 1.32
    near = bonding.bonded_to_point(slab, top + [0, 0, 1.45 * radii_sum], 0.31, surface)
    assert len(near) == 1  # ontop, held loosely: the relative rule
    far = bonding.bonded_to_point(slab, top + [0, 0, 1.55 * radii_sum], 0.31, surface)
    assert len(far) == 0


def test_hollow_in_a_1x1_cell_is_three_images_of_one_atom() -> None:
    slab = fcc111("Cu", (1, 1, 3), a=3.61, vacuum=10.0)
    add_adsorbate(slab, "H", 1.0, "fcc")
    h = len(slab) - 1
    bonds = bonding.bonded_to_point(slab, slab.positions[h], 0.31, np.arange(h))
    assert len(bonds) == 3 and bonds.atoms == [2]


@pytest.mark.parametrize("size", [(1, 1, 3), (2, 2, 3), (3, 3, 3)])
def test_near_points_finds_every_image(size) -> None:
    """Against a brute-force sum over +-3 cells, in cells below and above twice the cutoff."""
    slab = fcc111("Pt", size, a=3.92, vacuum=8.0)
    rng = np.random.default_rng(1)
    points = rng.random((5, 3)) @ slab.cell.array
    points[:, 2] = slab.positions[:, 2].max() + rng.random(5) * 2
    cutoff = 3.3
    point, atom, distance, vector = bonding.near_points(slab, points, cutoff)
    got = sorted(zip(point.tolist(), atom.tolist(), np.round(distance, 9).tolist(), strict=True))
    expected = []
    for p, x in enumerate(points):
        for k, (i, j) in itertools.product(
            range(len(slab)), itertools.product(range(-3, 4), repeat=2)
        ):
            image = slab.positions[k] + i * slab.cell[0] + j * slab.cell[1]
            dist = float(np.linalg.norm(image - x))
            if dist < cutoff:
                expected.append((p, k, round(dist, 9)))
    assert got == sorted(expected)
    assert np.allclose(np.linalg.norm(vector, axis=1), distance)


def test_minimum_image_in_a_skewed_cell_with_a_tilted_c() -> None:
    slab = fcc111("Cu", (3, 3, 3), a=3.61, vacuum=8.0)
    cell = slab.cell.array.copy()
    cell[2] = [1.5, -0.7, cell[2, 2]]  # a tilted c must not be used as a translation
    slab.set_cell(cell)
    v = np.array([0.3, 0.2, 1.0]) + 2 * cell[0] - cell[1]
    assert bonding.minimum_image(v, slab) == pytest.approx([0.3, 0.2, 1.0])
    lifted = bonding.minimum_image(v + cell[2], slab)  # c is kept: it is no translation
    assert lifted[2] == pytest.approx(1.0 + cell[2, 2])
    assert np.linalg.norm(lifted[:2]) <= np.linalg.norm(cell[2, :2] + [0.3, 0.2]) + 1e-9
    assert bonding.pair_distance(slab, 0, 0) == 0.0


def test_bond_ratio_inside_the_adsorbate() -> None:
    co = Atoms("CO", positions=[[0, 0, 0], [0, 0, 1.15]], cell=[5, 5, 10])
    assert bonding.bond_ratio(co, 0, 1) == pytest.approx(1.15 / (0.76 + 0.66))
    co.positions[1, 0] += 5.0 * 1.0  # one cell over in a: still the same bond
    assert bonding.bond_ratio(co, 0, 1) == pytest.approx(1.15 / (0.76 + 0.66))


def test_shortest_bonds_count_own_images() -> None:
    """A single chain of atoms 2.5 A apart along a: each atom's shortest bond is to itself."""
    chain = Atoms("Cu", positions=[[0, 0, 5]], cell=[2.5, 10.0, 10.0])
    assert bonding.shortest_bonds(chain) == pytest.approx([2.5])
    assert bonding.coordination_numbers(chain).tolist() == [2]
