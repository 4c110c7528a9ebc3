"""Quality checks after a relaxation: did the adsorbate stay put and the surface stay intact?

Pure functions on ASE ``Atoms``.  A flagged result is kept with its flags and left out of training;
the flags are what the control plane stores.  The checks follow the quality filters of
Tran & Ulissi, Nat. Catal. 1, 696 (2018) (final max force >= 0.5 eV/A, adsorbate moved >= 1.5 A,
slab atom moved >= 0.5 A), plus desorption and dissociation as in AdsorbML
(npj Comput. Mater. 2023).

Conventions: adsorbate atoms are tagged 0, slab atoms tagged >= 1; an adslab is the slab atoms
followed by the adsorbate atoms, and relaxation keeps the atom order.  Cells are periodic in a and b
(whatever ``pbc`` says): every displacement and distance uses the minimum image in that plane, so an
atom that wrapped across the cell boundary has not moved.  Which atoms are bonded, and the minimum
images, come from :mod:`workflows.bonding`, the rules the fingerprint and the site finder use.

Flags
-----
``desorbed``
    The binding atom (the adsorbate atom nearest a slab atom at the start) is bonded to no slab
    atom at the end, by the adsorbate rule of :func:`workflows.bonding.bonded_to_point`: nothing
    within ``BOND_FACTOR`` x (sum of covalent radii), and its nearest slab atom farther than
    ``DESORB_FACTOR`` x their radii sum.
``dissociated``
    A pair of adsorbate atoms bonded at the start is no longer bonded at the end; inside the
    adsorbate a bond is shorter than ``INTRAMOLECULAR_FACTOR`` x (sum of covalent radii), the
    connectivity test of AdsorbML, or than ``STRETCH_LIMIT`` x its placed length where that is
    longer: CO stretched past 1.44 A and OH past 1.21 A count as broken.
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

from workflows import bonding

#: Adsorbate-slab bond: closer than this x the sum of covalent radii (or see DESORB_FACTOR).
BOND_FACTOR = bonding.ADSORBATE_BOND_FACTOR
#: The relative part of the adsorbate rule reaches this x the radii sum of the nearest slab atom:
#: EMT keeps H in an fcc(110) trough 2.14-2.18 A from Cu (1.31 x the radii sum) and still bound;
#: beyond it nothing is bonded, and the adsorbate has desorbed.
DESORB_FACTOR = bonding.ADSORBATE_REACH
#: Bonds inside the adsorbate: shorter than this x (sum of covalent radii), ASE's natural cutoffs
#: as in AdsorbML (see :mod:`workflows.bonding`).
INTRAMOLECULAR_FACTOR = bonding.INTRAMOLECULAR_FACTOR
PLACED_BOND_SLACK = 1.1  # placed adsorbate atoms within this x their cutoff are bonded
STRETCH_LIMIT = 1.25  # a placed bond stretched past this x its length is broken

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


def _displacements(initial: Atoms, final: Atoms, indices: np.ndarray) -> np.ndarray:
    """Minimum-image displacement vectors (n x 3) of ``indices`` from initial to final."""
    if len(indices) == 0:
        return np.zeros((0, 3))
    delta = final.positions[indices] - initial.positions[indices]
    return np.atleast_2d(bonding.minimum_image(delta, final))


def _lateral(vectors: np.ndarray, atoms: Atoms) -> np.ndarray:
    """Lengths of the in-plane (perpendicular to the surface normal) parts of ``vectors``."""
    _, normal = _plane(atoms)
    vectors = np.atleast_2d(vectors)
    return np.linalg.norm(vectors - np.outer(vectors @ normal, normal), axis=1)


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
        distance = float(bonding.point_distances(atoms, atoms.positions[a], slab).min())
        if distance < best_distance - 1e-9:
            best_index, best_distance = int(a), distance
    return best_index


def _site(atoms: Atoms, index: int, slab: np.ndarray) -> tuple[dict[str, Any], float]:
    """Binding site of adsorbate atom ``index`` and its distance to the nearest slab atom.

    The bonds are :func:`workflows.bonding.bonded_to_point`'s, one per periodic image, so in a
    very small cell one atom can bind twice and the site type still counts three for a hollow.
    """
    point = atoms.positions[index]
    radius = float(covalent_radii[atoms.numbers[index]])
    bonds = bonding.bonded_to_point(atoms, point, radius, slab)
    symbols = atoms.get_chemical_symbols()
    site = {
        "binding_atoms": bonds.atoms,
        "site_type": SITE_TYPES.get(len(bonds)),
        "binding_elements": [symbols[j] for j in bonds.atoms],
    }
    return site, float(bonding.point_distances(atoms, point, slab).min())


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
        ``binding_atoms``: sorted indices of the slab atoms bonded to the binding atom (the
        adsorbate rule of :func:`workflows.bonding.bonded_to_point`; indices are the same in the
        bare slab);
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
    if not final_site["binding_atoms"]:
        flags.add("desorbed")

    # Intramolecular bonds present at the start must survive.  A bond placed at about the sum
    # of covalent radii (O-H: 0.97 A both) is a bond; it breaks past that sum or past
    # STRETCH_LIMIT x its placed length, whichever is longer (C-O: 1.42 A, O-H: 1.21 A).
    ratios = []
    for i, j in itertools.combinations(adsorbate.tolist(), 2):
        start = bonding.bond_ratio(initial, i, j)
        if start < PLACED_BOND_SLACK:
            ratios.append(bonding.bond_ratio(final, i, j) / max(1.0, STRETCH_LIMIT * start))
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
