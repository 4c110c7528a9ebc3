"""Bulk crystals of an element space: elemental ground states, ordered binary prototypes, imports.

Lattice rule for prototypes (stated, not fitted): the volume per atom of a compound is the
composition-weighted mean of the elemental volumes per atom (Vegard's law applied to volumes,
also called Zen's law), elemental volumes from ASE's reference states; L1_0 keeps the ideal
c/a = 1 of its parent fcc cell.  These are starting points: the DFT workflow relaxes the bulk.
"""

from __future__ import annotations

import hashlib
import itertools
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms
from ase.build import bulk as ase_bulk
from ase.data import atomic_numbers, chemical_symbols, reference_states

from screener.errors import InputError
from screener.files import input_file
from workflows.structures import atoms_to_dict

SUPPORTED_SYMMETRIES = ("fcc", "bcc", "hcp")
LATTICE_RULE = "Vegard (volume per atom, ASE reference states); L1_0 with c/a = 1"
BINARY_PROTOTYPES = ("B2", "L1_0", "L1_2")


@dataclass
class BulkSpec:
    """A bulk to store and enumerate: identity, provenance and structure."""

    key: str
    formula: str
    elements: list[str]
    prototype: str
    atoms: Atoms
    source: str
    lattice_rule: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def document_fields(self) -> dict[str, Any]:
        from pymatgen.io.ase import AseAtomsAdaptor
        from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

        structure = AseAtomsAdaptor.get_structure(self.atoms)
        try:
            analyzer = SpacegroupAnalyzer(structure, symprec=0.01)
            symbol, number = analyzer.get_space_group_symbol(), analyzer.get_space_group_number()
        except Exception:  # pragma: no cover - spglib failure on a strange import
            symbol, number = None, None
        return {
            "key": self.key,
            "formula": self.formula,
            "elements": self.elements,
            "prototype": self.prototype,
            "spacegroup": symbol,
            "spacegroup_number": number,
            "natoms": len(self.atoms),
            "volume_per_atom": float(self.atoms.get_volume() / len(self.atoms)),
            "structure": atoms_to_dict(self.atoms),
            "lattice_rule": self.lattice_rule,
            "source": self.source,
        }


def reduced_formula(atoms: Atoms) -> str:
    from pymatgen.core import Composition

    return Composition(atoms.get_chemical_formula()).reduced_formula


def parse_elements(text: str | list[str]) -> list[str]:
    """Split and validate element symbols; returns them sorted and unique."""
    items = text.split(",") if isinstance(text, str) else list(text)
    symbols = [s.strip() for s in items if s.strip()]
    if not symbols:
        raise InputError("no elements given")
    for symbol in symbols:
        if symbol not in atomic_numbers or symbol == "X":
            raise InputError(f"unknown element '{symbol}'")
        state = reference_states[atomic_numbers[symbol]] or {}
        if state.get("symmetry") not in SUPPORTED_SYMMETRIES:
            kind = state.get("symmetry") or "none"
            raise InputError(
                f"element '{symbol}' has no fcc/bcc/hcp ground state in ASE's reference data "
                f"(it is '{kind}'); import its bulk with --bulks FILE"
            )
    return sorted(set(symbols))


def elemental_bulk(symbol: str) -> Atoms:
    """The element's ground-state structure (fcc, bcc or hcp) at its reference lattice constant."""
    state = reference_states[atomic_numbers[symbol]]
    return ase_bulk(symbol, state["symmetry"])


def volume_per_atom(symbol: str) -> float:
    atoms = elemental_bulk(symbol)
    return atoms.get_volume() / len(atoms)


def _b2(a_sym: str, b_sym: str, vpa: float) -> Atoms:
    a = (2 * vpa) ** (1 / 3)
    return Atoms(
        [a_sym, b_sym], scaled_positions=[[0, 0, 0], [0.5, 0.5, 0.5]], cell=[a, a, a], pbc=True
    )


def _l10(a_sym: str, b_sym: str, vpa: float) -> Atoms:
    a = (4 * vpa) ** (
        1 / 3
    )  # parent fcc cube; the primitive tetragonal cell is a/sqrt2 x a/sqrt2 x a
    t = a / math.sqrt(2)
    return Atoms(
        [a_sym, b_sym], scaled_positions=[[0, 0, 0], [0.5, 0.5, 0.5]], cell=[t, t, a], pbc=True
    )


def _l12(majority: str, minority: str, vpa: float) -> Atoms:
    a = (4 * vpa) ** (1 / 3)
    return Atoms(
        [minority, majority, majority, majority],
        scaled_positions=[[0, 0, 0], [0, 0.5, 0.5], [0.5, 0, 0.5], [0.5, 0.5, 0]],
        cell=[a, a, a],
        pbc=True,
    )


def prototype_bulks(elements: list[str]) -> list[BulkSpec]:
    """Unaries of every element and B2, L1_0, L1_2 (A3B and AB3) of every pair."""
    specs: list[BulkSpec] = []
    volumes = {s: volume_per_atom(s) for s in elements}
    for symbol in elements:
        atoms = elemental_bulk(symbol)
        proto = reference_states[atomic_numbers[symbol]]["symmetry"]
        specs.append(_prototype_spec(proto, atoms, "ASE reference state"))
    for a_sym, b_sym in itertools.combinations(elements, 2):
        v_ab = (volumes[a_sym] + volumes[b_sym]) / 2
        specs.append(_prototype_spec("B2", _b2(a_sym, b_sym, v_ab), LATTICE_RULE))
        specs.append(_prototype_spec("L1_0", _l10(a_sym, b_sym, v_ab), LATTICE_RULE))
        for major, minor in ((a_sym, b_sym), (b_sym, a_sym)):
            v = (3 * volumes[major] + volumes[minor]) / 4
            specs.append(_prototype_spec("L1_2", _l12(major, minor, v), LATTICE_RULE))
    return specs


def _prototype_spec(prototype: str, atoms: Atoms, rule: str) -> BulkSpec:
    formula = reduced_formula(atoms)
    return BulkSpec(
        key=f"proto:{prototype}:{formula}",
        formula=formula,
        elements=sorted(set(atoms.get_chemical_symbols())),
        prototype=prototype,
        atoms=atoms,
        source="prototype",
        lattice_rule=rule,
    )


def structure_key(atoms: Atoms) -> str:
    """A hash of the standardised primitive cell: equal crystals read from any file agree."""
    import spglib

    cell = (atoms.cell.array, atoms.get_scaled_positions(), atoms.numbers)
    std = spglib.standardize_cell(cell, to_primitive=True, symprec=1e-3)
    lattice, positions, numbers = std if std is not None else cell
    positions = np.round(np.mod(np.round(positions, 3), 1.0), 3)
    rows = sorted(zip(numbers.tolist(), map(tuple, positions.tolist()), strict=True))
    text = repr((np.round(lattice, 3).tolist(), rows))
    return hashlib.sha1(text.encode()).hexdigest()[:16]


def read_bulk_file(path: str | Path) -> BulkSpec:
    """Read a user bulk (CIF, POSCAR, extxyz, anything ase.io reads); raises InputError."""
    from ase.io import read

    path = input_file(path, f"bulk file {path}")
    try:
        atoms = read(path)
    except Exception as exc:
        text = " ".join(str(exc).split())
        detail = text if len(text) > 3 else "not a structure ase.io can read (CIF, POSCAR, extxyz)"
        raise InputError(f"cannot read bulk file {path}: {detail}") from exc
    if isinstance(atoms, list):  # pragma: no cover - read() returns the last image by default
        atoms = atoms[-1]
    if len(atoms) == 0:
        raise InputError(f"bulk file {path}: no atoms")
    if not all(atoms.pbc) or atoms.cell.rank < 3 or atoms.get_volume() < 1.0:
        raise InputError(f"bulk file {path}: not a 3D periodic crystal (needs a full cell)")
    unknown = sorted({s for s in atoms.get_chemical_symbols() if s not in chemical_symbols[1:]})
    if unknown:
        raise InputError(f"bulk file {path}: unknown elements {unknown}")
    atoms = Atoms(atoms.numbers, positions=atoms.positions, cell=atoms.cell, pbc=True)
    formula = reduced_formula(atoms)
    return BulkSpec(
        key=f"import:{formula}:{structure_key(atoms)}",
        formula=formula,
        elements=sorted(set(atoms.get_chemical_symbols())),
        prototype="imported",
        atoms=atoms,
        source=f"file:{path.name}",
    )
