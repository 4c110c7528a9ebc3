"""Which atoms are bonded: the one rule set for the fingerprint, the site finder and the checks.

Every structure here is a slab: periodic in the cell vectors a and b, not in c, whatever its
``pbc`` says.  Periodic images come from ASE's neighbour list
(:func:`ase.neighborlist.neighbor_list`) and minimum images from :func:`ase.geometry.find_mic`;
nothing else searches images.  Bonds to periodic images count separately, so an atom of a 2x2
cell bonded to two images of one neighbour lists that neighbour twice, and a small cell counts
what a large one does.

Rules
-----
Metal-metal bonds (:func:`bonds`)
    Atoms i and j are bonded when closer than ``METAL_BOND_FACTOR`` x (r_i + r_j), where r is half
    the atom's own shortest bond (:func:`shortest_bonds`).  On a perfect lattice that is 1.12 x
    the nearest-neighbour distance: first neighbours are bonded, fcc second neighbours (1.41 x)
    and bcc/B2 second neighbours (1.155 x) are not.  Checked, with every first-neighbour pair
    bonded and no farther one: fcc (111), (100), (110) and (211) of Cu, Pt, Ag, Au, Pd, Ni and
    Al, ideal and EMT-relaxed (bonds at most 0.95 x the cutoff, second neighbours at least
    1.24 x); random Ag-Ru, Ag-Ir and Pd-Pt slabs on a 3.9 and a 4.0 A fcc lattice; the 198
    Miller <= 1 slabs of the project's unary, B2, L1_0 and L1_2 bulks of Cu-Pd-Fe-Ru-Al-Au (the
    closest call: bcc/B2 second neighbours at 1.03 x the cutoff).  Coordination comes out 9 on
    (111), 8 on (100), 7 on (110), 7/9/10 at the step, terrace and step foot of (211), 12 in
    bulk layers, 8 in bcc.  ASE's natural cutoffs (covalent radii x one multiplier) cannot do
    that for every element: first neighbours sit at up to 1.18 x the covalent radii sum (Al;
    Au 1.06 x), second neighbours from 1.07 x (B2 CuPd), 1.09 x (bcc Fe) and 0.975 x (bcc W),
    so no multiplier separates the shells; on those 198 slabs every multiplier from 1.05 to 1.3
    misassigns 48 or more.  Covalent radii say what a metal is; the structure's own bond lengths
    say where its first shell ends.  The limit of that rule: an atom whose first-shell bonds
    spread by more than 12% loses its longest bonds.  Relaxed lattice-mismatched alloys do that:
    on the DFT dev set's relaxed Ag-Ir and Ag-Ru (111) slabs, Ag-Ag bonds stretch to 3.2-3.4 A
    beside 2.7 A Ir-Ir, so an Ag's shortest bond says little about its longest.
Close-packed slabs (the same :func:`bonds`)
    A slab in which some atom has ``CLOSE_PACKED_CN`` (12) bonds under the rule above is
    close-packed (fcc, hcp, L1_0, L1_2), where no second neighbour comes closer than 1.41 x the
    first.  On it, atoms closer than ``RELAXED_FACTOR`` (1.2) x their covalent radii sum are
    bonded as well (ASE's natural cutoffs x 1.2).  bcc and B2 slabs, whose second neighbours sit
    at 1.155 x, never have 12 and keep the structure rule alone.  Checked: the 389 Miller <= 1
    slabs of the unary, B2, L1_0 and L1_2 bulks of Cu-Pd-Fe-Ru-Al-Au (308 close-packed) get no
    bond they did not have; on the dev set's relaxed slabs the share of OH top sites with the
    regular (111) zones (1 binding atom, a ring of 6, 3 below, 12 in the second ring) goes from
    70% to 93% of a sample of 640, and of O fcc sites from 60% to 88% of 692.
Adsorbate to surface (:func:`bonded_to_point`)
    An adsorbate atom (radius r_a, its covalent radius) is bonded to surface atom j at distance d
    when d < ``ADSORBATE_BOND_FACTOR`` x (r_a + r_j), covalent radii; or when the nearest surface
    atom is within ``ADSORBATE_REACH`` x (r_a + r_nearest) and d <= ``BINDING_RELATIVE`` x its
    distance.  The relative part finds the site when the adsorbate sits farther out than covalent
    radii say: EMT keeps H 2.2-2.3 A from the atoms of a bridge or hollow (1.35-1.4 x the radii
    sum), and 2.14-2.18 A from Cu in an fcc(110) trough.  Beyond the reach nothing is bonded:
    the adsorbate has desorbed.
Inside the adsorbate (:func:`bond_ratio`)
    Two adsorbate atoms are bonded when closer than ``INTRAMOLECULAR_FACTOR`` x the sum of their
    covalent radii, ASE's natural cutoffs as in AdsorbML: with 1.25 (1.78 A for C-O), CO
    stretched to 1.42-1.75 A and lying flat across a hollow passed as intact (55 of 1030
    otherwise unflagged CO sites of an Ag-Au-Cu-Pd-Pt EMT pool); adsorbed CO is 1.15-1.20 A.
Site edges (the site finder)
    Two surface atoms span a bridge when at most ``SITE_EDGE_FACTOR`` x the slab's shortest bond
    apart.  Looser than a bond on purpose: on bcc(100) and B2(100) the top-layer atoms are
    second neighbours (1.155 x), not bonded, yet their square is the 4-fold hollow.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from ase import Atoms
from ase.data import covalent_radii
from ase.geometry import find_mic, minkowski_reduce
from ase.neighborlist import neighbor_list

#: Metal-metal bond: closer than this x (r_i + r_j), r = half the atom's own shortest bond.
METAL_BOND_FACTOR = 1.12
#: A slab with an atom of this many bonds under that rule is close-packed (fcc, hcp, L1_0, L1_2):
CLOSE_PACKED_CN = 12
#: ... and on it, atoms closer than this x the sum of covalent radii are bonded too.
RELAXED_FACTOR = 1.2
#: Adsorbate-surface bond: closer than this x the sum of covalent radii ...
ADSORBATE_BOND_FACTOR = 1.25
#: ... or within this x the distance to the nearest surface atom (which is then bonded) ...
BINDING_RELATIVE = 1.15
#: ... provided the nearest surface atom is within this x the sum of their covalent radii.
ADSORBATE_REACH = 1.5
#: Bond inside the adsorbate: closer than this x the sum of covalent radii (natural cutoffs).
INTRAMOLECULAR_FACTOR = 1.0
#: Site finder: surface atoms at most this x the slab's shortest bond apart span a bridge.
SITE_EDGE_FACTOR = 1.3

PBC = (True, True, False)  # slabs: periodic in a and b only
_SEARCH = 2.5  # first guess for the shortest-bond search: this x the largest covalent radius


def _slab(atoms: Atoms) -> Atoms:
    """A bare copy (numbers, positions, cell) periodic in a and b only."""
    return Atoms(numbers=atoms.numbers, positions=atoms.positions, cell=atoms.cell, pbc=PBC)


def _plane_cell(atoms: Atoms) -> np.ndarray:
    """The cell with c replaced by the unit surface normal: in-plane lattice, nothing along c."""
    ab = np.asarray(atoms.cell.array[:2], dtype=float)
    normal = np.cross(ab[0], ab[1])
    norm = float(np.linalg.norm(normal))
    if norm < 1e-8:
        raise ValueError("the cell needs two non-parallel in-plane vectors a and b")
    return np.vstack([ab, normal / norm])


def covalent_radii_of(atoms: Atoms) -> np.ndarray:
    """Covalent radii of the atoms (A): ASE's natural cutoffs with multiplier 1.

    :func:`ase.neighborlist.natural_cutoffs` gives the same numbers one Atom at a time; the
    array lookup is what it does, fast enough to call for every placed adsorbate.
    """
    return np.asarray(covalent_radii[atoms.numbers], dtype=float)


def minimum_image(vectors: np.ndarray, atoms: Atoms) -> np.ndarray:
    """Shortest periodic images of difference vectors (n x 3 or 3): a, b periodic, c not.

    Only in-plane lattice translations i*a + j*b are applied, whatever c is (tilted or zero).
    """
    vectors = np.asarray(vectors, dtype=float)
    wrapped, _ = find_mic(vectors, _plane_cell(atoms), pbc=PBC)
    return wrapped


def point_distances(
    atoms: Atoms, point: np.ndarray, indices: np.ndarray | None = None
) -> np.ndarray:
    """Distances (A) from ``point`` to the nearest periodic image of each atom (or ``indices``).

    Parameters
    ----------
    atoms : Atoms
        The slab (a, b periodic).
    point : array of 3 floats
        Cartesian position (A).
    indices : array of int, optional
        The atoms to measure to; default all, in order.
    """
    positions = atoms.positions if indices is None else atoms.positions[np.asarray(indices)]
    if len(positions) == 0:
        return np.zeros(0)
    delta = minimum_image(positions - np.asarray(point, dtype=float), atoms)
    return np.linalg.norm(np.atleast_2d(delta), axis=1)


def pair_distance(atoms: Atoms, i: int, j: int) -> float:
    """Minimum-image distance (A) between atoms ``i`` and ``j``."""
    return float(point_distances(atoms, atoms.positions[i], np.array([j]))[0])


def shortest_bonds(atoms: Atoms) -> np.ndarray:
    """Every atom's shortest distance (A) to any other atom or periodic image (inf if alone)."""
    slab = _slab(atoms)
    radii = covalent_radii_of(slab)
    cutoff = _SEARCH * float(radii.max()) if len(slab) else 0.0
    shortest = np.full(len(slab), np.inf)
    while len(slab):
        first, distance = neighbor_list("id", slab, cutoff)
        shortest = np.full(len(slab), np.inf)
        np.minimum.at(shortest, first, distance)
        if np.isfinite(shortest).all() or cutoff > 12.0:
            break
        cutoff *= 2  # an atom with no neighbour yet: look farther
    return shortest


@dataclass
class Bonds:
    """Metal-metal bonds of a slab, one entry per bonded periodic image.

    Attributes
    ----------
    neighbours : list of int arrays
        ``neighbours[i]``: the atoms bonded to atom ``i``, an atom listed once per bonded image.
    offsets : list of (k, 3) int arrays
        The cell offset of each of those images (third column 0: c is not periodic).
    distances : list of float arrays
        The bond lengths (A), in the same order.
    """

    neighbours: list[np.ndarray]
    offsets: list[np.ndarray]
    distances: list[np.ndarray]

    @property
    def coordination(self) -> np.ndarray:
        """Coordination number of every atom (bonds to periodic images count)."""
        return np.array([len(n) for n in self.neighbours], dtype=int)


def bonds(atoms: Atoms, *, mult: float = METAL_BOND_FACTOR) -> Bonds:
    """Metal-metal bonds: closer than ``mult`` x (r_i + r_j), r = half the atom's shortest bond;
    on a close-packed slab also closer than ``RELAXED_FACTOR`` x the sum of covalent radii.

    Parameters
    ----------
    atoms : Atoms
        The slab (surface atoms only: leave the adsorbate out), a and b periodic.
    mult : float
        The multiplier; the default is the project's rule (see the module docstring).
    """
    slab = _slab(atoms)
    n = len(slab)
    if n == 0:
        return Bonds([], [], [])
    radii = covalent_radii_of(slab)
    # one neighbour search serves the shortest bonds and both rules when their cutoffs stay
    # inside it (metals: always); the general path otherwise
    search = _SEARCH * float(radii.max())
    first, second, distance, shift = neighbor_list("ijdS", slab, search)
    shortest = np.full(n, np.inf)
    np.minimum.at(shortest, first, distance)
    cutoffs = mult * shortest / 2
    if not (np.isfinite(shortest).all() and 2 * cutoffs.max() < search):
        cutoffs = mult * shortest_bonds(slab) / 2
        cutoffs[~np.isfinite(cutoffs)] = 0.0
        reach = max(2 * float(cutoffs.max()), 2 * RELAXED_FACTOR * float(radii.max()))
        first, second, distance, shift = neighbor_list("ijdS", slab, reach)
    keep = distance < cutoffs[first] + cutoffs[second]
    if np.bincount(first[keep], minlength=n).max() >= CLOSE_PACKED_CN:
        keep |= distance < RELAXED_FACTOR * (radii[first] + radii[second])
    first, second, distance, shift = first[keep], second[keep], distance[keep], shift[keep]
    order = np.argsort(first, kind="stable")
    split = np.searchsorted(first[order], np.arange(n + 1))
    parts = [order[split[k] : split[k + 1]] for k in range(n)]
    return Bonds(
        neighbours=[second[p] for p in parts],
        offsets=[shift[p] for p in parts],
        distances=[distance[p] for p in parts],
    )


def coordination_numbers(atoms: Atoms, *, mult: float = METAL_BOND_FACTOR) -> np.ndarray:
    """Coordination number of every atom under :func:`bonds` (periodic images count)."""
    return bonds(atoms, mult=mult).coordination


@dataclass
class Contacts:
    """Atoms near a point, one entry per periodic image, nearest first.

    Attributes
    ----------
    indices : int array
        The atoms (an atom appears once per image).
    distances : float array
        Distances (A) from the point.
    vectors : (k, 3) float array
        From the point to each image (A).
    """

    indices: np.ndarray
    distances: np.ndarray
    vectors: np.ndarray

    def __len__(self) -> int:
        return len(self.indices)

    def select(self, mask: np.ndarray) -> Contacts:
        return Contacts(self.indices[mask], self.distances[mask], self.vectors[mask])

    @property
    def atoms(self) -> list[int]:
        """The distinct atoms, sorted."""
        return sorted({int(i) for i in self.indices})


def shortest_period(atoms: Atoms) -> float:
    """Length (A) of the shortest in-plane lattice translation i*a + j*b (Minkowski-reduced)."""
    reduced, _ = minkowski_reduce(_plane_cell(atoms), pbc=PBC)
    return float(np.linalg.norm(reduced[:2], axis=1).min())


def near_points(
    atoms: Atoms, points: np.ndarray, cutoff: float, candidates: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Every periodic image of ``candidates`` (default all atoms) closer than ``cutoff`` to points.

    When the cell is at least twice ``cutoff`` wide no atom has two images in reach, and the
    minimum images (:func:`minimum_image`) are the answer.  In a smaller cell the points join
    the atoms in reach as ghost atoms of ASE's neighbour list, which finds every image.

    Parameters
    ----------
    atoms : Atoms
        The slab, a and b periodic.
    points : (m, 3) or (3,) array
        Cartesian positions (A).
    cutoff : float
        Distance (A).
    candidates : array of int, optional
        The atoms to look for.

    Returns
    -------
    point, atom, distance, vector : arrays
        One entry per (point, atom image) pair in reach: the point's index, the atom's index,
        their distance (A) and the vector from the point to the image (A).
    """
    points = np.atleast_2d(np.asarray(points, dtype=float))
    candidates = np.arange(len(atoms)) if candidates is None else np.asarray(candidates, int)
    m, k = len(points), len(candidates)
    if m == 0 or k == 0 or cutoff <= 0:
        return np.zeros(0, int), np.zeros(0, int), np.zeros(0), np.zeros((0, 3))
    delta = atoms.positions[candidates][None, :, :] - points[:, None, :]
    vectors = minimum_image(delta.reshape(-1, 3), atoms).reshape(m, k, 3)
    distances = np.linalg.norm(vectors, axis=2)
    if 2 * cutoff <= shortest_period(atoms):
        point, atom = np.nonzero(distances < cutoff)
        return point, candidates[atom], distances[point, atom], vectors[point, atom]
    near = np.flatnonzero((distances < cutoff).any(axis=0))  # every image in reach: the nearest is
    n = len(near)
    ghosts = Atoms(
        numbers=np.concatenate([atoms.numbers[candidates[near]], np.zeros(m, int)]),
        positions=np.vstack([atoms.positions[candidates[near]], points]),
        cell=atoms.cell,
        pbc=PBC,
    )
    first, second, distance, vector = neighbor_list("ijdD", ghosts, np.full(n + m, cutoff / 2))
    keep = (first >= n) & (second < n)
    return first[keep] - n, candidates[near[second[keep]]], distance[keep], vector[keep]


def near_point(
    atoms: Atoms, point: np.ndarray, cutoff: float, candidates: np.ndarray | None = None
) -> Contacts:
    """Every periodic image of ``candidates`` (default all) within ``cutoff`` of ``point``."""
    _, atom, distance, vector = near_points(atoms, point, cutoff, candidates)
    order = np.argsort(distance, kind="stable")
    return Contacts(atom[order], distance[order], vector[order])


def bonded_to_point(
    atoms: Atoms,
    point: np.ndarray,
    radius_of_point: float,
    candidates: np.ndarray | None = None,
    *,
    images: bool = True,
) -> Contacts:
    """Surface atoms bonded to an adsorbate atom at ``point``: the adsorbate rule.

    Bonded: closer than ``ADSORBATE_BOND_FACTOR`` x (``radius_of_point`` + r_j), covalent
    radii; or, when the nearest candidate is within ``ADSORBATE_REACH`` x (``radius_of_point``
    + its radius), within ``BINDING_RELATIVE`` x the nearest one's distance.

    Parameters
    ----------
    atoms : Atoms
        The structure holding the candidates, a and b periodic.
    point : array of 3 floats
        The adsorbate atom's position (A).
    radius_of_point : float
        Its covalent radius (A).
    candidates : array of int, optional
        The surface atoms that may bind (default all atoms of ``atoms``).
    images : bool
        Every bonded periodic image, so that the number of bonds gives the site type even in a
        1x1 cell (default); ``False``: each atom's nearest image only, which decides the same
        set of atoms faster.

    Returns
    -------
    Contacts
        The bonds, nearest first; empty when nothing is in reach (desorbed).
    """
    candidates = np.arange(len(atoms)) if candidates is None else np.asarray(candidates, int)
    if len(candidates) == 0:
        return Contacts(np.zeros(0, int), np.zeros(0), np.zeros((0, 3)))
    radii = covalent_radii_of(atoms)
    largest = radius_of_point + float(radii[candidates].max())
    reach = max(ADSORBATE_BOND_FACTOR, BINDING_RELATIVE * ADSORBATE_REACH) * largest
    if images:
        near = near_point(atoms, point, reach, candidates)
    else:
        vectors = minimum_image(atoms.positions[candidates] - np.asarray(point, float), atoms)
        vectors = np.atleast_2d(vectors)
        distances = np.linalg.norm(vectors, axis=1)
        order = np.argsort(distances, kind="stable")
        near = Contacts(candidates[order], distances[order], vectors[order])
    if len(near) == 0:
        return near
    pair = radius_of_point + radii[near.indices]
    bonded = near.distances < ADSORBATE_BOND_FACTOR * pair
    nearest = near.distances[0]
    if nearest < ADSORBATE_REACH * pair[0]:
        bonded |= near.distances <= BINDING_RELATIVE * nearest
    return near.select(bonded)


def bond_ratio(atoms: Atoms, i: int, j: int) -> float:
    """Distance of atoms ``i`` and ``j`` (minimum image) over their intramolecular cutoff.

    The cutoff is ``INTRAMOLECULAR_FACTOR`` x the sum of their covalent radii: bonded below 1.
    """
    radii = covalent_radii_of(atoms)
    return pair_distance(atoms, i, j) / (INTRAMOLECULAR_FACTOR * (radii[i] + radii[j]))
