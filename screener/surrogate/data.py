"""Labelled adsorption energies read from any ASE-readable file, checked and fingerprinted.

Each frame is an adsorbate+slab with the adsorbate tagged 0 and the surface atoms tagged >= 1
(the convention of :func:`screener.enumerate.fingerprint.fingerprint_of_adslab`), and its
adsorption energy in ``atoms.info[energy_key]`` (eV).  Bad data raises :class:`InputError` with
one line naming the file and, where it applies, the frame.

A row is known by the site its relaxation started from where the frame says so: ``initial_binding``
(JSON list of the surface atoms the adsorbate was placed on, indices among the surface atoms, as
the project's EMT pool writes) gives the fingerprint of that site on the frame's surface, which is
what the loop knows about an unlabelled site and what it trains on for its own results (an
adsorbate that moved during relaxation is still the outcome of calculating that site).  Without
it the row is known by its relaxed structure.  ``relaxed_fingerprints`` always holds the latter.

A frame's energy is against the gas references (``workflows.adsorbates``: O = H2O - H2, ...)
unless its info says otherwise: ``reference`` names the state its zero is (the dev set's
``Pt(111)``: the same adsorbate on Pt(111)); absent, empty or ``gas`` means the gas references.
Differences of energies (cross-validation errors) do not depend on it; targets and imports do.

Cross-validation groups default to slab identity: frames cut from the same slab (different
sites, relaxed differently) share a group, so that grouped CV never scores a site on a slab it
has trained on.  Two frames are the same slab when their surface atoms (tag >= 1) have the same
symbols in the same order, the same cell (within 0.05 A per cell-vector component) and
positions that agree to 0.5 A (median displacement, in-plane minimum image): adsorbates relax
the atoms under them by tenths of an angstrom, distinct slabs or terminations differ by whole
layers.  The group name is the reduced formula of the surface atoms and a hash of the first such
frame's rounded cell and positions, so it is the same on every read of the same file.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from ase import Atoms

from screener.errors import InputError
from screener.files import input_file

SAME_SLAB_CELL_TOL = 0.05  # A, per cell-vector component
SAME_SLAB_MEDIAN_SHIFT = 0.5  # A, median displacement of the surface atoms
SLAB_KEY = "slab"  # the group key naming a slab: frames without it are grouped by slab identity
REFERENCE_KEY = "reference"  # info key naming the state a frame's energy is relative to
GAS_REFERENCE = "gas"  # ... the gas references of workflows.adsorbates (also: key absent)


@dataclass
class LabelledSet:
    """Rows of labelled adsorption energies (aligned lists)."""

    fingerprints: list[dict]
    energies: np.ndarray
    adsorbates: list[str]
    groups: list[str]
    pure: list[str | None]
    atoms: list[Atoms] = field(default_factory=list)
    info: list[dict] = field(default_factory=list)
    source: str = ""
    #: fingerprints of the labelled (relaxed) structures, whatever ``fingerprints`` holds
    relaxed_fingerprints: list[dict] = field(default_factory=list)
    #: per row, the surface atoms the relaxation started on (info ``initial_binding``), or None
    initial_binding: list[list[int] | None] = field(default_factory=list)
    #: per row, the state its energy is relative to (info ``reference``); None: the gas references
    references: list[str | None] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.energies)

    def take(self, indices) -> LabelledSet:
        """The rows at ``indices`` (integer positions or a boolean mask), in that order."""
        idx = np.arange(len(self))[np.asarray(indices)]
        return LabelledSet(
            fingerprints=[self.fingerprints[i] for i in idx] if self.fingerprints else [],
            energies=np.asarray(self.energies, dtype=float)[idx],
            adsorbates=[self.adsorbates[i] for i in idx],
            groups=[self.groups[i] for i in idx],
            pure=[self.pure[i] for i in idx],
            atoms=[self.atoms[i] for i in idx] if self.atoms else [],
            info=[self.info[i] for i in idx] if self.info else [],
            source=self.source,
            relaxed_fingerprints=[self.relaxed_fingerprints[i] for i in idx]
            if self.relaxed_fingerprints
            else [],
            initial_binding=[self.initial_binding[i] for i in idx] if self.initial_binding else [],
            references=[self.references[i] for i in idx] if self.references else [],
        )

    @property
    def reference(self) -> str | None:
        """The state every row's energy is relative to; None for the gas references.

        :class:`InputError` when rows differ: their energies are on different scales.
        """
        found = set(self.references or [None])
        if len(found) > 1:
            named = ", ".join(sorted(r or "the gas references" for r in found))
            where = f"{self.source}: " if self.source else ""
            raise InputError(f"{where}energies relative to different states ({named})")
        return found.pop()

    @property
    def known_by_site(self) -> int:
        """How many rows are known by the site their relaxation started from."""
        return sum(b is not None for b in self.initial_binding)

    def select(self, adsorbate: str) -> LabelledSet:
        """The rows of one adsorbate; :class:`InputError` if there are none."""
        mask = np.array([a == adsorbate for a in self.adsorbates], dtype=bool)
        if not mask.any():
            present = ", ".join(sorted(set(self.adsorbates))) or "none"
            where = f" in {self.source}" if self.source else ""
            raise InputError(f"no {adsorbate} rows{where} (adsorbates present: {present})")
        return self.take(mask)


def _read_frames(path: Path) -> list[tuple[Atoms, dict]]:
    """Frames and their info; an ASE database's key_value_pairs (and data) become the info."""
    from ase.io.formats import filetype

    try:
        kind = filetype(str(path), guess=True)
    except Exception:
        kind = None
    try:
        if kind == "db":
            import ase.db

            frames = []
            with ase.db.connect(str(path)) as db:
                for row in db.select():
                    atoms = row.toatoms()
                    info = dict(row.get("data", {}) or {})
                    info.update(row.key_value_pairs)
                    frames.append((atoms, info))
            return frames
        from ase.io import read

        if path.suffix == ".gz" and kind == "extxyz":
            # ase's extxyz reader seeks back to each frame: on a gzip stream every seek
            # decompresses from the start (6,658 frames: 10 min); in memory it is seconds
            with gzip.open(path, "rt") as handle:
                images = read(io.StringIO(handle.read()), ":", format="extxyz")
        else:
            images = read(str(path), ":")
    except InputError:
        raise
    except Exception as error:  # any parser failure is bad input
        message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise InputError(f"cannot read {path}: {message}") from error
    if isinstance(images, Atoms):
        images = [images]
    return [(atoms, dict(atoms.info)) for atoms in images]


def _format_name(path: Path) -> str:
    """The ASE format ``path`` is read as, for messages (``.md`` is CASTEP's MD format)."""
    from ase.io.formats import filetype

    try:
        return f"ase format '{filetype(str(path), guess=True)}'"
    except Exception:
        return "an unknown format"


def _energy(atoms: Atoms, info: dict, key: str, where: str) -> float:
    if key in info:
        value = info[key]
    elif atoms.calc is not None and key in getattr(atoms.calc, "results", {}):
        value = atoms.calc.results[key]  # e.g. extxyz puts energy= into a calculator
    else:
        present = ", ".join(sorted(map(str, info))) or "none"
        raise InputError(f"{where}: no energy key '{key}' (info keys: {present})")
    try:
        energy = float(np.asarray(value, dtype=float).reshape(-1)[0])
    except (TypeError, ValueError, IndexError) as error:
        raise InputError(f"{where}: energy '{key}' is not a number ({value!r})") from error
    if not math.isfinite(energy):
        raise InputError(f"{where}: energy '{key}' is not finite ({energy})")
    return energy


def adsorbate_of(atoms: Atoms, where: str) -> str:
    """The adsorbate (an entry of workflows.adsorbates) the tag-0 atoms' composition is."""
    from workflows.adsorbates import ADSORBATES

    tags = atoms.get_tags()
    symbols = [s for s, t in zip(atoms.get_chemical_symbols(), tags, strict=True) if t == 0]
    counts = Counter(symbols)
    for name, adsorbate in ADSORBATES.items():
        if counts == Counter(adsorbate.formula):
            return name
    found = "".join(f"{s}{n if n > 1 else ''}" for s, n in sorted(counts.items()))
    raise InputError(
        f"{where}: adsorbate (tag-0 atoms) is {found}; supported: {', '.join(ADSORBATES)}"
    )


class _SlabIdentity:
    """Assigns a group name per slab: frames within tolerance of an earlier frame join its group."""

    def __init__(self) -> None:
        self._reps: dict[tuple, list[tuple[np.ndarray, np.ndarray, str]]] = {}

    @staticmethod
    def _displacement(a: np.ndarray, b: np.ndarray, cell: np.ndarray) -> np.ndarray:
        delta = a - b
        try:
            frac = np.linalg.solve(cell.T, delta.T).T
        except np.linalg.LinAlgError:
            return np.linalg.norm(delta, axis=1)
        frac[:, :2] -= np.round(frac[:, :2])  # a and b periodic, c not
        return np.linalg.norm(frac @ cell, axis=1)

    def name(self, surface: Atoms) -> str:
        numbers = tuple(int(z) for z in surface.numbers)
        cell = np.asarray(surface.cell.array, dtype=float)
        positions = np.asarray(surface.positions, dtype=float)
        reps = self._reps.setdefault(numbers, [])
        for rep_cell, rep_pos, name in reps:
            if np.abs(rep_cell - cell).max() > SAME_SLAB_CELL_TOL:
                continue
            shift = self._displacement(positions, rep_pos, cell)
            if np.median(shift) <= SAME_SLAB_MEDIAN_SHIFT:
                return name
        digest = hashlib.sha1()
        digest.update(np.asarray(numbers, dtype=np.int64).tobytes())
        digest.update(np.round(cell, 1).astype(np.float64).tobytes() + b"|")
        digest.update(np.round(positions, 1).astype(np.float64).tobytes())
        name = f"{surface.get_chemical_formula(mode='metal')}:{digest.hexdigest()[:10]}"
        reps.append((cell, positions, name))
        return name


def read_labelled(
    path: str | Path,
    *,
    energy_key: str = "E_ads",
    group_by: str | None = None,
    adsorbate: str | None = None,
    check: Callable[[LabelledSet], None] | None = None,
) -> LabelledSet:
    """Read, check and fingerprint the frames of ``path`` (extxyz, ASE .db, ...).

    Parameters
    ----------
    path : str or Path
        The file.
    energy_key : str
        The info key of each frame's adsorption energy (eV).
    group_by : str, optional
        The info key naming each frame's cross-validation group; default: slab identity (module
        docstring).  ``"slab"`` (:data:`SLAB_KEY`) falls back to slab identity, which is what it
        names, when some frame does not carry it; any other key must be on every frame.
    adsorbate : str, optional
        Keep only this adsorbate's rows, so that only they are fingerprinted; :class:`InputError`
        before any fingerprinting when the file has none.  Every frame is checked either way.
    check : callable, optional
        Called with the rows kept, read and checked but not yet fingerprinted (``fingerprints``
        and ``relaxed_fingerprints`` empty), before the fingerprinting that takes most of a
        read: a caller refuses a file it cannot use by raising :class:`InputError` there.
    """
    path = input_file(path)
    if path.stat().st_size == 0:
        raise InputError(f"{path}: empty file")
    frames = _read_frames(path)
    if not frames:
        raise InputError(f"{path}: no structures in it (read as {_format_name(path)})")
    rows: dict[str, list] = {
        k: [] for k in ("e", "ads", "grp", "pure", "atoms", "info", "surface", "binding", "ref")
    }
    for index, (atoms, info) in enumerate(frames):
        where = f"{path} frame {index}"
        energy = _energy(atoms, info, energy_key, where)
        tags = atoms.get_tags()
        if len(atoms) == 0:
            raise InputError(f"{where}: no atoms")
        if not (tags > 0).any():
            raise InputError(f"{where}: no surface atoms tagged >= 1 (tags missing?)")
        if not (tags == 0).any():
            raise InputError(f"{where}: no adsorbate atoms (nothing tagged 0)")
        name = adsorbate_of(atoms, where)
        surface = atoms[tags > 0]
        elements = set(surface.get_chemical_symbols())
        group = None
        if group_by is not None and group_by in info:
            group = str(info[group_by])
        elif group_by is not None and group_by != SLAB_KEY:
            present = ", ".join(sorted(map(str, info))) or "none"
            raise InputError(f"{where}: no group key '{group_by}' (info keys: {present})")
        binding = None
        if "initial_binding" in info:
            binding = _initial_binding(info["initial_binding"], len(surface), where)
        rows["ads"].append(name)
        rows["ref"].append(_reference(info, where))
        rows["binding"].append(binding)
        rows["e"].append(energy)
        rows["grp"].append(group)
        rows["pure"].append(next(iter(elements)) if len(elements) == 1 else None)
        rows["atoms"].append(atoms)
        rows["info"].append(info)
        rows["surface"].append(surface)
    if None in rows["grp"]:  # slab identity over every frame, so names do not depend on a filter
        identity = _SlabIdentity()
        rows["grp"] = [identity.name(surface) for surface in rows["surface"]]
    keep = list(range(len(frames)))
    if adsorbate is not None:
        keep = [i for i, name in enumerate(rows["ads"]) if name == adsorbate]
        if not keep:
            present = ", ".join(sorted(set(rows["ads"])))
            raise InputError(f"no {adsorbate} rows in {path} (adsorbates present: {present})")
    rows = {k: [v[i] for i in keep] for k, v in rows.items()}
    if check is not None:
        check(_rows_to_set(rows, path, [], []))
    relaxed, fingerprints = [], []
    for index, result in zip(keep, _fingerprint_all(rows["atoms"], rows["binding"]), strict=True):
        if isinstance(result, str):
            raise InputError(f"{path} frame {index}: cannot fingerprint ({result})")
        relaxed.append(result[0])
        fingerprints.append(result[1])
    return _rows_to_set(rows, path, fingerprints, relaxed)


def _rows_to_set(
    rows: dict[str, list], path: Path, fingerprints: list[dict], relaxed: list[dict]
) -> LabelledSet:
    return LabelledSet(
        fingerprints=fingerprints,
        energies=np.asarray(rows["e"], dtype=float),
        adsorbates=rows["ads"],
        groups=rows["grp"],
        pure=rows["pure"],
        atoms=rows["atoms"],
        info=rows["info"],
        source=str(path),
        relaxed_fingerprints=relaxed,
        initial_binding=rows["binding"],
        references=rows["ref"],
    )


def _reference(info: dict, where: str) -> str | None:
    """The state a frame's energy is relative to (info ``reference``); None: the gas references."""
    value = info.get(REFERENCE_KEY)
    if value is None:
        return None
    if not isinstance(value, str):
        raise InputError(f"{where}: '{REFERENCE_KEY}' is not a name ({value!r})")
    value = value.strip()
    return None if value in ("", GAS_REFERENCE) else value


PARALLEL_FRAMES = 1000  # from this many frames on, fingerprints are computed in processes
CHUNK_FRAMES = 250


def _fingerprint_chunk(
    chunk: list[tuple[Atoms, list[int] | None]],
) -> list[tuple[dict, dict] | str]:
    """(relaxed, starting-site) fingerprints per frame, or the reason it cannot be fingerprinted."""
    from screener.enumerate.fingerprint import SlabBonds, fingerprint_of_adslab

    out: list[tuple[dict, dict] | str] = []
    for atoms, binding in chunk:
        bonds = SlabBonds.of(atoms[atoms.get_tags() > 0])  # shared by both fingerprints
        try:
            relaxed = fingerprint_of_adslab(atoms, bonds)
        except ValueError as error:
            out.append(str(error))
            continue
        start = relaxed if binding is None else fingerprint_of_adslab(atoms, bonds, binding)
        out.append((relaxed, start))
    return out


def _fingerprint_all(
    atoms: list[Atoms], bindings: list[list[int] | None]
) -> list[tuple[dict, dict] | str]:
    """Fingerprints of every frame, in worker processes (one per core, at most 4) for big files.

    The workers are joblib's loky processes: started fresh (not forked, since the caller may hold
    database clients and threads), and without re-running the caller's ``__main__``, so a script
    that calls this needs no ``if __name__ == "__main__"`` guard.
    """
    import os

    from joblib import Parallel, delayed

    pairs = list(zip(atoms, bindings, strict=True))
    workers = min(4, os.cpu_count() or 1)
    if len(pairs) < PARALLEL_FRAMES or workers < 2:
        return _fingerprint_chunk(pairs)
    chunks = [pairs[i : i + CHUNK_FRAMES] for i in range(0, len(pairs), CHUNK_FRAMES)]
    parts = Parallel(n_jobs=workers, backend="loky")(delayed(_fingerprint_chunk)(c) for c in chunks)
    return [result for part in parts for result in part]


def _initial_binding(value, n_surface: int, where: str) -> list[int]:
    """The surface atoms an adsorbate was placed on: indices among the surface atoms (tag >= 1),
    as JSON text or a sequence."""
    try:
        binding = json.loads(value) if isinstance(value, str) else list(np.ravel(value))
        binding = [int(i) for i in binding]
    except (TypeError, ValueError) as error:
        raise InputError(f"{where}: initial_binding is not a list of atom indices") from error
    if not binding or min(binding) < 0 or max(binding) >= n_surface:
        raise InputError(
            f"{where}: initial_binding {binding} is not a non-empty list of surface-atom "
            f"indices (0..{n_surface - 1})"
        )
    return binding
