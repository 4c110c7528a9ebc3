"""Quality checks after a relaxation: did the adsorbate stay put and the surface stay intact?

Pure functions on ASE ``Atoms``.  A flagged result is kept with its flags and left out of training;
the flags are what the control plane stores.  The checks follow the quality filters of
Tran & Ulissi, Nat. Catal. 1, 696 (2018) (final max force >= 0.5 eV/A, adsorbate moved >= 1.5 A,
slab atom moved >= 0.5 A), plus desorption and dissociation as in AdsorbML
(npj Comput. Mater. 2023).

Conventions: adsorbate atoms are tagged 0, slab atoms tagged >= 1; an adslab is the slab atoms
followed by the adsorbate atoms, and relaxation keeps the atom order.  Cells are periodic in a and b
(whatever ``pbc`` says): every displacement and distance uses the minimum image in that plane, so an
atom that wrapped across the cell boundary has not moved.

Flags
-----
``desorbed``
    The binding atom (the adsorbate atom nearest a slab atom at the start) has no slab atom within
    ``BOND_FACTOR`` x (sum of covalent radii) at the end.
``dissociated``
    A pair of adsorbate atoms bonded at the start is no longer bonded at the end; inside the
    adsorbate a bond is shorter than ``INTRAMOLECULAR_FACTOR`` x (sum of covalent radii), the
    connectivity test of AdsorbML, so CO stretched past 1.42 A counts as broken.
``migrated``
    The binding atom moved at least ``move_limit`` A in the surface plane, or it is still bound but
    to a different site (a different set of slab atoms or a different coordination).
``reconstructed``
    A slab atom moved at least ``reconstruct_limit`` A.
``high_force``
    The final maximum force is at least ``force_limit`` eV/A.
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np
from ase import Atoms
from ase.data import covalent_radii

#: Two atoms are bonded when closer than this factor times the sum of their covalent radii.
BOND_FACTOR = 1.25
# desorbed: no slab atom within this x (sum of covalent radii).  Looser than BOND_FACTOR: EMT
# keeps H in an fcc(110) trough 2.14-2.18 A from Cu (1.31 x the radii sum) and still bound.
DESORB_FACTOR = 1.5
#: Bonds inside the adsorbate: shorter than this x (sum of covalent radii), i.e. ASE's natural
#: cutoffs as in AdsorbML.  Tighter than BOND_FACTOR: with 1.25 (cutoff 1.78 A for C-O), CO
#: stretched to 1.42-1.75 A and lying nearly flat across a hollow passed as intact (55 of the
#: 1030 otherwise unflagged CO sites of the Ag-Au-Cu-Pd-Pt EMT pool, 0.2-0.4 eV "stronger"
#: binding, an EMT artefact); adsorbed CO is 1.15-1.20 A.
INTRAMOLECULAR_FACTOR = 1.0

#: Site type by the number of slab atoms bonded to the binding atom.
SITE_TYPES: dict[int, str] = {1: "ontop", 2: "bridge", 3: "hollow", 4: "4-fold"}

ADSLAB_FLAGS = ("desorbed", "dissociated", "high_force", "migrated", "reconstructed")
SLAB_FLAGS = ("high_force", "reconstructed")


# --- geometry helpers -------------------------------------------------------------------------


def _plane(atoms: Atoms) -> tuple[np.ndarray, np.ndarray]:
    """In-plane cell vectors (2 x 3) and the unit surface normal."""
    ab = np.asarray(atoms.cell.array[:2], dtype=float)
    normal = np.cross(ab[0], ab[1])
    norm = np.linalg.norm(normal)
    if norm < 1e-8:
        raise ValueError("the cell needs two non-parallel in-plane vectors a and b")
    return ab, normal / norm


def _wrap_in_plane(vectors: np.ndarray, atoms: Atoms, reach: int = 1) -> np.ndarray:
    """Shortest periodic images of difference vectors (n x 3), periodic in a and b only.

    The a and b components are first rounded away in fractional coordinates; the images within
    ``reach`` cells around that are then searched, which also gives the true minimum image in
    skewed (e.g. hexagonal) cells.
    """
    vectors = np.atleast_2d(np.asarray(vectors, dtype=float))
    ab, normal = _plane(atoms)
    # Fractional a, b components of the in-plane part (solve in the plane's own basis).
    in_plane = vectors - np.outer(vectors @ normal, normal)
    frac = np.linalg.lstsq(ab.T, in_plane.T, rcond=None)[0].T
    wrapped = vectors - np.round(frac) @ ab
    best = wrapped.copy()
    best_norm = np.linalg.norm(best, axis=1)
    for i, j in itertools.product(range(-reach, reach + 1), repeat=2):
        if i == 0 and j == 0:
            continue
        candidate = wrapped + i * ab[0] + j * ab[1]
        norm = np.linalg.norm(candidate, axis=1)
        better = norm < best_norm - 1e-12
        best[better] = candidate[better]
        best_norm[better] = norm[better]
    return best


def _displacements(initial: Atoms, final: Atoms, indices: np.ndarray) -> np.ndarray:
    """Minimum-image displacement vectors (n x 3) of ``indices`` from initial to final."""
    if len(indices) == 0:
        return np.zeros((0, 3))
    delta = final.positions[indices] - initial.positions[indices]
    return _wrap_in_plane(delta, final)


def _lateral(vectors: np.ndarray, atoms: Atoms) -> np.ndarray:
    """Lengths of the in-plane (perpendicular to the surface normal) parts of ``vectors``."""
    _, normal = _plane(atoms)
    vectors = np.atleast_2d(vectors)
    return np.linalg.norm(vectors - np.outer(vectors @ normal, normal), axis=1)


def _radius(number: int) -> float:
    return float(covalent_radii[number])


def _bonded_images(atoms: Atoms, index: int, candidates: np.ndarray) -> list[tuple[int, float]]:
    """Bonds of atom ``index`` to ``candidates``, one entry per periodic image, as (j, distance).

    A bond is a distance below ``BOND_FACTOR`` x (sum of covalent radii).  All in-plane images in
    reach of the cutoff are counted, so in a very small cell one atom can bind twice.
    """
    if len(candidates) == 0:
        return []
    ab, normal = _plane(atoms)
    numbers = atoms.numbers
    cutoffs = BOND_FACTOR * (_radius(numbers[index]) + covalent_radii[numbers[candidates]])
    # Reach: enough images that every point within the largest cutoff is covered.
    area = float(np.linalg.norm(np.cross(ab[0], ab[1])))
    heights = [area / float(np.linalg.norm(ab[1])), area / float(np.linalg.norm(ab[0]))]
    reach = [int(math.ceil(float(cutoffs.max()) / h)) + 1 for h in heights]
    base = _wrap_in_plane(atoms.positions[candidates] - atoms.positions[index], atoms)
    bonds: list[tuple[int, float]] = []
    for i in range(-reach[0], reach[0] + 1):
        for j in range(-reach[1], reach[1] + 1):
            distances = np.linalg.norm(base + i * ab[0] + j * ab[1], axis=1)
            for k in np.flatnonzero(distances < cutoffs):
                bonds.append((int(candidates[k]), float(distances[k])))
    return bonds


def _pair_distance(atoms: Atoms, i: int, j: int) -> float:
    return float(np.linalg.norm(_wrap_in_plane(atoms.positions[j] - atoms.positions[i], atoms)))


def _split(atoms: Atoms) -> tuple[np.ndarray, np.ndarray]:
    """Indices of slab atoms (tag >= 1) and adsorbate atoms (tag 0) of an adslab."""
    tags = atoms.get_tags()
    slab = np.flatnonzero(tags >= 1)
    adsorbate = np.flatnonzero(tags == 0)
    if len(slab) == 0:
        raise ValueError("the adslab has no slab atoms (tag >= 1)")
    if len(adsorbate) == 0:
        raise ValueError("the adslab has no adsorbate atoms (tag 0)")
    return slab, adsorbate


def _check_same(initial: Atoms, final: Atoms) -> None:
    if len(initial) != len(final) or not np.array_equal(initial.numbers, final.numbers):
        raise ValueError("initial and final structures must have the same atoms in the same order")


def _binding_index(atoms: Atoms, slab: np.ndarray, adsorbate: np.ndarray) -> int:
    """The adsorbate atom nearest any slab atom (minimum image; first one on ties)."""
    best_index, best_distance = int(adsorbate[0]), math.inf
    for a in adsorbate:
        vectors = _wrap_in_plane(atoms.positions[slab] - atoms.positions[a], atoms)
        distance = float(np.linalg.norm(vectors, axis=1).min())
        if distance < best_distance - 1e-9:
            best_index, best_distance = int(a), distance
    return best_index


def _site(atoms: Atoms, index: int, slab: np.ndarray) -> tuple[dict[str, Any], float]:
    """Binding site of adsorbate atom ``index`` and its distance to the nearest slab atom."""
    bonds = _bonded_images(atoms, index, slab)
    binding_atoms = sorted({j for j, _ in bonds})
    symbols = atoms.get_chemical_symbols()
    site = {
        "binding_atoms": binding_atoms,
        "site_type": SITE_TYPES.get(len(bonds)),
        "binding_elements": [symbols[j] for j in binding_atoms],
    }
    vectors = _wrap_in_plane(atoms.positions[slab] - atoms.positions[index], atoms)
    return site, float(np.linalg.norm(vectors, axis=1).min())


# --- public checks ----------------------------------------------------------------------------


def binding_site(adslab: Atoms, *, binding_index: int | None = None) -> dict[str, Any]:
    """Where the adsorbate of an adslab is bound.

    Parameters
    ----------
    adslab : Atoms
        Slab atoms (tag >= 1) and adsorbate atoms (tag 0), periodic in a and b.
    binding_index : int, optional
        Index of the adsorbate atom to look at; default the adsorbate atom nearest a slab atom.

    Returns
    -------
    dict
        ``binding_atoms``: sorted indices of the slab atoms bonded to the binding atom (within
        ``BOND_FACTOR`` x the sum of covalent radii; indices are the same in the bare slab);
        ``site_type``: ``"ontop"``, ``"bridge"``, ``"hollow"`` or ``"4-fold"`` by the number of
        bonds (periodic images counted), ``None`` when unbound or more than 4-fold;
        ``binding_elements``: the symbols of ``binding_atoms``, in the same order.
        Hollows are not split into fcc/hcp: the atom indices tell them apart.
    """
    slab, adsorbate = _split(adslab)
    if binding_index is None:
        binding_index = _binding_index(adslab, slab, adsorbate)
    elif binding_index not in set(adsorbate.tolist()):
        raise ValueError(f"atom {binding_index} is not an adsorbate atom (tag 0)")
    return _site(adslab, int(binding_index), slab)[0]


def slab_anomalies(
    initial: Atoms,
    final: Atoms,
    *,
    max_force: float | None = None,
    reconstruct_limit: float = 0.5,
    force_limit: float = 0.5,
) -> dict[str, Any]:
    """Flags of a relaxed bare slab: ``reconstructed`` and ``high_force``.

    Parameters
    ----------
    initial, final : Atoms
        The slab before and after relaxation (same atoms, same order).  Atoms tagged >= 1 are
        checked; when no atom carries such a tag, all atoms are.
    max_force : float, optional
        Final maximum force on a free atom (eV/A); ``high_force`` is not checked without it.
    reconstruct_limit : float
        ``reconstructed`` when an atom moved at least this far (A, minimum image in the plane).
    force_limit : float
        ``high_force`` when ``max_force`` is at least this (eV/A).

    Returns
    -------
    dict
        ``flags``: sorted list of flag names; ``details``: ``max_displacement`` (A),
        ``moved_atom`` (index of the atom that moved most) and ``max_force`` when given.
    """
    _check_same(initial, final)
    tags = initial.get_tags()
    indices = np.flatnonzero(tags >= 1) if np.any(tags >= 1) else np.arange(len(initial))
    flags: set[str] = set()
    details: dict[str, Any] = {}
    moved = np.linalg.norm(_displacements(initial, final, indices), axis=1)
    if len(moved):
        k = int(np.argmax(moved))
        details["max_displacement"] = float(moved[k])
        details["moved_atom"] = int(indices[k])
        if moved[k] >= reconstruct_limit:
            flags.add("reconstructed")
    if max_force is not None:
        details["max_force"] = float(max_force)
        if max_force >= force_limit:
            flags.add("high_force")
    return {"flags": sorted(flags), "details": details}


def adslab_anomalies(
    initial: Atoms,
    final: Atoms,
    *,
    slab_initial: Atoms | None = None,
    slab_final: Atoms | None = None,
    max_force: float | None = None,
    force_limit: float = 0.5,
    move_limit: float = 1.5,
    reconstruct_limit: float = 0.5,
) -> dict[str, Any]:
    """Flags of a relaxed adslab: desorbed, dissociated, migrated, reconstructed, high_force.

    Parameters
    ----------
    initial, final : Atoms
        The adslab before and after relaxation: slab atoms (tag >= 1) then adsorbate atoms
        (tag 0), same order in both.
    slab_initial : Atoms, optional
        The bare slab before its own relaxation (same slab atoms, same order as in the adslab).
        Without ``slab_final``, the slab atoms of the *final adslab* are compared with it, which
        catches a reconstruction accumulated over both relaxations.
    slab_final : Atoms, optional
        The relaxed bare slab; with ``slab_initial``, :func:`slab_anomalies` is applied to the
        pair as well and its ``reconstructed`` flag carried over.
    max_force : float, optional
        Final maximum force on a free atom of the adslab (eV/A).
    force_limit : float
        ``high_force`` when ``max_force`` is at least this (eV/A).
    move_limit : float
        ``migrated`` when the binding atom moved at least this far in the surface plane (A).
    reconstruct_limit : float
        ``reconstructed`` when a slab atom moved at least this far (A).

    Returns
    -------
    dict
        ``flags``: sorted list among ``ADSLAB_FLAGS``; ``details``: numbers behind them
        (``binding_index``, ``binding_distance`` and ``initial_binding_distance`` in A,
        ``lateral_displacement`` and ``displacement`` of the binding atom in A,
        ``max_bond_ratio`` (largest final / bonded-cutoff ratio over intramolecular bonds, >1
        means broken), ``max_slab_displacement`` and ``moved_atom``, optionally
        ``bare_slab_displacement`` (largest slab-atom move measured from ``slab_initial``) and
        ``max_force``); ``final_site``: the site the binding atom ended on, as
        :func:`binding_site` gives it.

    Notes
    -----
    ``migrated`` is raised by a site change only when the adsorbate is bound both at the start
    and at the end; a desorbed adsorbate is flagged ``desorbed`` (and ``migrated`` only if it
    also moved ``move_limit`` laterally), and one placed out of bonding range that came down is
    judged by its lateral move alone.
    """
    _check_same(initial, final)
    slab, adsorbate = _split(initial)
    if not np.array_equal(final.get_tags() == 0, initial.get_tags() == 0):
        raise ValueError("initial and final adslab disagree on which atoms are the adsorbate")
    flags: set[str] = set()
    details: dict[str, Any] = {}

    # Binding atom and its site, before and after.
    bind = _binding_index(initial, slab, adsorbate)
    initial_site, initial_distance = _site(initial, bind, slab)
    final_site, final_distance = _site(final, bind, slab)
    details["binding_index"] = bind
    details["initial_binding_distance"] = initial_distance
    details["binding_distance"] = final_distance
    nearest_radii = _radius(initial.numbers[bind]) + min(
        covalent_radii[initial.numbers[j]] for j in slab.tolist()
    )
    if not final_site["binding_atoms"] and final_distance > DESORB_FACTOR * nearest_radii:
        flags.add("desorbed")

    # Intramolecular bonds present at the start must survive.
    numbers = initial.numbers
    ratios = []
    for i, j in itertools.combinations(adsorbate.tolist(), 2):
        cutoff = INTRAMOLECULAR_FACTOR * (_radius(numbers[i]) + _radius(numbers[j]))
        if _pair_distance(initial, i, j) < cutoff:
            ratios.append(_pair_distance(final, i, j) / cutoff)
    if ratios:
        details["max_bond_ratio"] = float(max(ratios))
        if max(ratios) > 1.0:
            flags.add("dissociated")

    # Migration: far in the plane, or a different site while still bound.
    move = _displacements(initial, final, np.array([bind]))
    lateral = float(_lateral(move, final)[0])
    details["lateral_displacement"] = lateral
    details["displacement"] = float(np.linalg.norm(move[0]))
    same_site = (
        final_site["binding_atoms"] == initial_site["binding_atoms"]
        and final_site["site_type"] == initial_site["site_type"]
    )
    bound_both = bool(initial_site["binding_atoms"]) and bool(final_site["binding_atoms"])
    if lateral >= move_limit or (bound_both and not same_site):
        flags.add("migrated")

    # Reconstruction of the slab under the adsorbate (and of the bare slab, when given).
    moved = np.linalg.norm(_displacements(initial, final, slab), axis=1)
    k = int(np.argmax(moved))
    details["max_slab_displacement"] = float(moved[k])
    details["moved_atom"] = int(slab[k])
    if moved[k] >= reconstruct_limit:
        flags.add("reconstructed")
    if slab_initial is not None:
        n = len(slab_initial)
        if n > len(final) or not np.array_equal(slab_initial.numbers, final.numbers[:n]):
            raise ValueError("slab_initial must be the adslab's slab atoms, in the same order")
        if slab_final is None:
            slab_final = final[:n]
            slab_final.set_tags(slab_initial.get_tags())
        bare = slab_anomalies(slab_initial, slab_final, reconstruct_limit=reconstruct_limit)
        details["bare_slab_displacement"] = bare["details"].get("max_displacement", 0.0)
        flags.update(bare["flags"])
    elif slab_final is not None:
        raise ValueError("slab_final needs slab_initial")

    if max_force is not None:
        details["max_force"] = float(max_force)
        if max_force >= force_limit:
            flags.add("high_force")
    return {"flags": sorted(flags), "details": details, "final_site": final_site}
