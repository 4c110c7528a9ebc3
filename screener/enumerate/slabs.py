"""Slabs: every symmetrically distinct Miller plane up to ``max_miller``, every termination.

Conventions (Tran & Ulissi 2018, adapted): the slab's top side (+z) is the surface; atom centres
span at least ``min_thickness`` A; the slab is repeated in-plane until periodic images of an
adsorbate are at least ``min_width`` A apart; at most ``max_atoms`` atoms (larger surfaces are
reported as skipped); ``vacuum`` A of vacuum on each side; c is along z, a along x.  Atoms more than
``fix_below`` A below the top atom are fixed (ASE FixAtoms) and layers are tagged 1 (top), 2, ...

Terminations: pymatgen returns one slab per distinct cut, counting a slab and its upside-down twin
as one (an A-topped/B-bottomed slab stands for the B-topped one too).  So both faces of each slab
are terminations: the bottom face is enumerated by flipping the slab, unless a symmetry of the slab
maps its top onto its bottom.  Faces are told apart by the depth profile of their top region.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from ase import Atoms
from ase.constraints import FixAtoms

LAYER_TOLERANCE = 0.2  # A: atoms closer than this in z share a layer tag


@dataclass
class SlabParams:
    max_miller: int = 2
    min_thickness: float = 7.0
    min_width: float = 4.5
    max_atoms: int = 80
    vacuum: float = 10.0
    fix_below: float = 3.0


@dataclass
class SlabRecord:
    miller: tuple[int, int, int]
    shift: float
    side: str
    atoms: Atoms
    repeat: tuple[int, int]

    @property
    def termination(self) -> str:
        return f"{self.shift:.4f}/{self.side}"

    @property
    def thickness(self) -> float:
        z = self.atoms.positions[:, 2]
        return float(z.max() - z.min())

    @property
    def area(self) -> float:
        return float(np.linalg.norm(np.cross(self.atoms.cell[0], self.atoms.cell[1])))

    def top_composition(self) -> dict[str, int]:
        tags = self.atoms.get_tags()
        symbols = np.array(self.atoms.get_chemical_symbols())
        values, counts = np.unique(symbols[tags == 1], return_counts=True)
        return {str(v): int(c) for v, c in zip(values, counts, strict=True)}


@dataclass
class Skipped:
    miller: tuple[int, int, int]
    shift: float | None
    reason: str


def make_slabs(bulk: Atoms, params: SlabParams) -> tuple[list[SlabRecord], list[Skipped]]:
    """All surfaces of ``bulk`` up to ``params.max_miller`` (see module docstring)."""
    from pymatgen.core.surface import SlabGenerator, get_symmetrically_distinct_miller_indices
    from pymatgen.io.ase import AseAtomsAdaptor
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    structure = AseAtomsAdaptor.get_structure(bulk)
    conventional = SpacegroupAnalyzer(structure, symprec=0.01).get_conventional_standard_structure()
    records: list[SlabRecord] = []
    skipped: list[Skipped] = []
    for miller in get_symmetrically_distinct_miller_indices(conventional, params.max_miller):
        miller = tuple(int(i) for i in miller)
        seen: set[tuple] = set()
        for slab in _terminations(conventional, miller, params, SlabGenerator):
            atoms = _oriented(slab)
            sides = [("top", atoms)]
            if not _top_equals_bottom(atoms):
                sides.append(("bottom", _flipped(atoms)))
            for side, oriented in sides:
                signature = _top_signature(oriented)
                if signature in seen:
                    continue
                seen.add(signature)
                result = _finish(oriented, params)
                if isinstance(result, str):
                    skipped.append(Skipped(miller, round(float(slab.shift), 4), result))
                    continue
                final, repeat = result
                records.append(SlabRecord(miller, round(float(slab.shift), 4), side, final, repeat))
    return records, skipped


def _terminations(conventional, miller, params: SlabParams, generator_cls) -> list:
    """pymatgen slabs (one per distinct shift) whose atom centres span >= min_thickness."""
    size = params.min_thickness
    for _ in range(6):
        generator = generator_cls(
            conventional,
            miller,
            min_slab_size=size,
            min_vacuum_size=2 * params.vacuum,
            lll_reduce=True,
            center_slab=True,
            primitive=True,
        )
        slabs = generator.get_slabs(symmetrize=False)
        spans = [_span(s) for s in slabs]
        if slabs and min(spans) >= params.min_thickness - 1e-6:
            return [s.get_orthogonal_c_slab() for s in slabs]
        size += max(0.5, params.min_thickness - min(spans, default=0.0))
    return [s.get_orthogonal_c_slab() for s in slabs]


def _span(slab) -> float:
    normal = slab.normal
    heights = slab.cart_coords @ normal
    return float(heights.max() - heights.min())


def _standard_cell(a: np.ndarray, b: np.ndarray, height: float) -> np.ndarray:
    """Cell with a along x, b in the xy plane (right-handed) and c = height along z."""
    ax = float(np.linalg.norm(a))
    bx = float(np.dot(b, a)) / ax
    by = float(np.linalg.norm(np.cross(a, b))) / ax
    return np.array([[ax, 0.0, 0.0], [bx, by, 0.0], [0.0, 0.0, height]])


def _oriented(slab) -> Atoms:
    """ASE atoms with a along x, b in the xy plane, c along +z (the surface normal)."""
    lattice = slab.lattice.matrix
    normal = np.cross(lattice[0], lattice[1])
    normal /= np.linalg.norm(normal)
    projection = float(np.dot(lattice[2], normal))
    frac = slab.frac_coords.copy()
    if projection < 0:  # c points below the ab plane: count heights the other way
        frac[:, 2] *= -1
    cell = _standard_cell(lattice[0], lattice[1], abs(projection))
    numbers = [site.specie.Z for site in slab]
    return Atoms(numbers=numbers, scaled_positions=frac, cell=cell, pbc=True)


def _flipped(atoms: Atoms) -> Atoms:
    """The same slab turned upside down (a proper rotation by 180 degrees about x)."""
    positions = atoms.positions * np.array([1.0, -1.0, -1.0])
    a, b, c = atoms.cell.array
    b_rot = b * np.array([1.0, -1.0, 1.0])
    # (b_rot, a) is right-handed with +z, which (a, b_rot) is not
    vectors = np.array([b_rot, a, [0.0, 0.0, c[2]]])
    frac = positions @ np.linalg.inv(vectors)
    cell = _standard_cell(b_rot, a, float(c[2]))
    return Atoms(atoms.numbers, scaled_positions=frac, cell=cell, pbc=True)


def _top_equals_bottom(atoms: Atoms) -> bool:
    """True when a symmetry operation of the slab turns it upside down."""
    import spglib

    cell = (atoms.cell.array, atoms.get_scaled_positions(), atoms.numbers)
    dataset = spglib.get_symmetry(cell, symprec=0.05)
    if dataset is None:
        return False
    return any(rot[2, 2] == -1 for rot in dataset["rotations"])


def _top_signature(atoms: Atoms, depth: float = 4.0) -> tuple:
    """Identity of a face: elements, depths and in-region neighbour distances of its top atoms."""
    z = atoms.positions[:, 2]
    top = np.where(z > z.max() - depth)[0]
    symbols = atoms.get_chemical_symbols()
    rows = []
    for i in top:
        d = atoms.get_distances(i, top, mic=True)
        near = sorted(
            (symbols[j], round(float(dist), 1))
            for j, dist in zip(top, d, strict=True)
            if 0 < dist < 4.0
        )
        rows.append((symbols[i], round(float(z.max() - z[i]), 1), tuple(near)))
    return tuple(sorted(rows))


def _finish(atoms: Atoms, params: SlabParams) -> tuple[Atoms, tuple[int, int]] | str:
    """Repeat to the minimum width, set vacuum, tags and constraints; or a reason to skip."""
    na, nb = _repeats(atoms.cell.array[:2, :2], params.min_width)
    natoms = len(atoms) * na * nb
    if natoms > params.max_atoms:
        return f"needs {natoms} atoms ({na}x{nb}) > max {params.max_atoms}"
    slab = atoms.repeat((na, nb, 1))
    slab.pbc = [True, True, True]
    slab.center(vacuum=params.vacuum, axis=2)
    slab.wrap()
    z = slab.positions[:, 2]
    order = np.argsort(-z, kind="stable")
    tags = np.zeros(len(slab), dtype=int)
    layer, previous = 0, None
    for index in order:
        if previous is None or previous - z[index] > LAYER_TOLERANCE:
            layer += 1
            previous = z[index]
        tags[index] = layer
    slab.set_tags(tags)
    fixed = np.where(z < z.max() - params.fix_below - 1e-6)[0]
    slab.set_constraint(FixAtoms(indices=fixed))
    return slab, (na, nb)


def _repeats(cell2d: np.ndarray, min_width: float) -> tuple[int, int]:
    """Smallest in-plane repetition whose shortest lattice vector is >= ``min_width``."""
    a, b = cell2d
    na = max(1, math.ceil(min_width / np.linalg.norm(a) - 1e-9))
    nb = max(1, math.ceil(min_width / np.linalg.norm(b) - 1e-9))
    while _shortest_vector(na * a, nb * b) < min_width - 1e-9:
        if np.linalg.norm(na * a) <= np.linalg.norm(nb * b):
            na += 1
        else:
            nb += 1
    return na, nb


def _shortest_vector(a: np.ndarray, b: np.ndarray) -> float:
    best = math.inf
    for i in range(-3, 4):
        for j in range(-3, 4):
            if i or j:
                best = min(best, float(np.linalg.norm(i * a + j * b)))
    return best
