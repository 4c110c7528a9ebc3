"""Calculator profiles: named recipes that turn (kind, system) into the settings actually used.

A profile is injected by name (``"gpaw"``, ``"gpaw-fast"``, ``"emt"``).  Its identity,
``<name>@<hash>`` (:attr:`Profile.identity`), hashes every parameter of the profile together with
the settings it gives reference systems of each kind, so editing a profile (or the code that turns
it into settings) gives it a new identity.  The control plane keys jobs, calculations and models by
the identity, so results of other settings are never reused or mixed; a worker given an identity
that is not its own profile's refuses to run (its code differs from the submitter's).  Each result
also carries :meth:`Profile.settings_hash`, the hash of the settings of that one structure.

Settings are plain JSON (the same dict goes into Firework specs, ``in.json`` of
:mod:`workflows.gpaw_run` and the result document). Their keys:

``calculator``
    ``"gpaw"`` or ``"emt"``.
``mode``, ``xc``, ``kpts``, ``occupations``, ``spinpol``, ``magmoms``, ``mixer``, ``convergence``,
``maxiter``, ``eigensolver``, ``txt`` (GPAW only)
    Passed to ``gpaw.GPAW`` (``magmoms`` is per element and becomes the atoms' initial magnetic
    moments; ``None`` values are left to GPAW's defaults).
``relax``
    ``optimizer`` (ASE class name), ``fmax`` (eV/A), ``max_steps`` (ionic steps), ``maxstep``
    (largest atom displacement per step, A), ``relax_cell`` and ``cell_filter`` (bulks relax the
    cell through ``ase.filters.FrechetCellFilter``).

Production ``gpaw`` follows Tran & Ulissi (2018) with GPAW instead of VASP: RPBE, plane waves of
500 eV (bulk) / 350 eV (slab, adslab, gas), k-points 10x10x10 for a ~3.6 A cubic bulk cell and
4x4x1 for a ~5 A wide slab (scaled with the cell), Gamma point for gas molecules, Fermi-Dirac
smearing 0.1 eV (0.01 eV for gas), and spin polarisation when Fe, Co or Ni is present.
"""

from __future__ import annotations

import hashlib
import json
import math
import platform
import re
from dataclasses import asdict, dataclass
from functools import cache
from importlib import metadata
from typing import Any

import numpy as np
from ase import Atoms

KINDS = ("bulk", "slab", "adslab", "gas")

#: Elements ASE's EMT has parameters for.
EMT_ELEMENTS = frozenset({"Al", "Cu", "Ag", "Au", "Ni", "Pd", "Pt", "H", "C", "N", "O"})

#: Initial magnetic moments (mu_B per atom) for the magnetic elements; spin polarisation is on
#: when any of them is present.
INITIAL_MAGMOMS: dict[str, float] = {"Fe": 2.0, "Co": 2.0, "Ni": 0.6}


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise ValueError(f"unknown calculation kind '{kind}' (known: {', '.join(KINDS)})")


def bulk_kpoints(atoms: Atoms, length: float) -> list[int]:
    """Monkhorst-Pack size with ``n_i = ceil(length * |b_i|)`` (``b`` reciprocal, no 2 pi).

    ``n_i * d_i >= length`` where ``d_i`` is the spacing of lattice planes ``i``, so every cell of
    one material gets the same k-point density: a cubic cell of 3.6 A and ``length=36`` gives 10,
    the 1-atom fcc primitive cell of the same metal 18 (its Brillouin zone is 4x larger).
    """
    reciprocal = atoms.cell.reciprocal()
    sizes = []
    for i in range(3):
        if not atoms.pbc[i]:
            sizes.append(1)
            continue
        n = length * float(np.linalg.norm(reciprocal[i]))
        sizes.append(max(1, math.ceil(n - 1e-6)))
    return sizes


def slab_kpoints(atoms: Atoms, length: float) -> list[int]:
    """In-plane ``n_i = ceil(length / |a_i|)`` for a and b, 1 along c (the vacuum direction).

    With ``length=20`` a 5-6.7 A wide cell gets 4 (the paper's 4x4x1), a 2.55 A 1x1 cell 8 and a
    10 A supercell 2.
    """
    sizes = []
    for i in range(2):
        a = float(np.linalg.norm(atoms.cell[i]))
        sizes.append(max(1, math.ceil(length / a - 1e-6)) if atoms.pbc[i] and a > 0 else 1)
    return [*sizes, 1]


@dataclass(frozen=True)
class Profile:
    """A named calculator recipe.

    Attributes
    ----------
    name
        Profile name (``"gpaw"``, ``"gpaw-fast"``, ``"emt"``).
    code
        ``"gpaw"`` (run under MPI by :mod:`workflows.gpaw_run`) or ``"emt"`` (in-process).
    xc
        Exchange-correlation functional (GPAW).
    ecut_bulk, ecut_surface
        Plane-wave cutoffs (eV) for bulks and for slabs, adslabs and gas molecules.
    bulk_kpt_length
        Length (A) of :func:`bulk_kpoints`.
    slab_kpt_length
        Length (A) of :func:`slab_kpoints`.
    smearing, gas_smearing
        Fermi-Dirac width (eV) for condensed systems and gas molecules.
    convergence
        SCF convergence criteria as ``(name, value)`` pairs (empty: GPAW's defaults).
    fmax
        Force criterion of the relaxation (eV/A).
    max_steps
        Most ionic steps of one relaxation.
    """

    name: str
    code: str
    xc: str = "RPBE"
    ecut_bulk: float = 500.0
    ecut_surface: float = 350.0
    bulk_kpt_length: float = 36.0
    slab_kpt_length: float = 20.0
    smearing: float = 0.1
    gas_smearing: float = 0.01
    convergence: tuple[tuple[str, float], ...] = ()
    fmax: float = 0.05
    max_steps: int = 200

    def covers(self, atoms: Atoms) -> bool:
        """Whether this profile can describe every element of ``atoms``."""
        if self.code == "emt":
            return set(atoms.get_chemical_symbols()) <= EMT_ELEMENTS
        return True

    def relax_settings(self, kind: str) -> dict[str, Any]:
        """The relaxation part of :meth:`settings`."""
        _check_kind(kind)
        cell = kind == "bulk"
        return {
            "optimizer": "BFGS",
            "fmax": self.fmax,
            "max_steps": self.max_steps,
            "maxstep": 0.2,
            "relax_cell": cell,
            "cell_filter": "FrechetCellFilter" if cell else None,
        }

    def settings(self, kind: str, atoms: Atoms) -> dict[str, Any]:
        """JSON-safe calculator and relaxation settings used for ``atoms`` of ``kind``.

        Parameters
        ----------
        kind
            One of :data:`KINDS`.
        atoms
            The system; k-points follow its cell, spin its elements.

        Returns
        -------
        dict
            See the module docstring for the keys.
        """
        _check_kind(kind)
        if self.code == "emt":
            return {"calculator": "emt", "relax": self.relax_settings(kind)}
        if kind == "bulk":
            kpts = bulk_kpoints(atoms, self.bulk_kpt_length)
        elif kind == "gas":
            kpts = [1, 1, 1]
        else:
            kpts = slab_kpoints(atoms, self.slab_kpt_length)
        symbols = set(atoms.get_chemical_symbols())
        magmoms = {s: m for s, m in sorted(INITIAL_MAGMOMS.items()) if s in symbols}
        return {
            "calculator": "gpaw",
            "mode": {"name": "pw", "ecut": self.ecut_bulk if kind == "bulk" else self.ecut_surface},
            "xc": self.xc,
            "kpts": {"size": kpts, "gamma": True},
            "occupations": {
                "name": "fermi-dirac",
                "width": self.gas_smearing if kind == "gas" else self.smearing,
            },
            "spinpol": bool(magmoms),
            "magmoms": magmoms,
            "mixer": None,
            "convergence": dict(self.convergence),
            "maxiter": 333,
            "eigensolver": None,
            "txt": "gpaw.txt",
            "relax": self.relax_settings(kind),
        }

    def settings_hash(self, kind: str, atoms: Atoms) -> str:
        """First 12 hex digits of the SHA-1 of profile name, kind and :meth:`settings`."""
        return hash_settings(self.name, kind, self.settings(kind, atoms))

    @property
    def identity_hash(self) -> str:
        """8 hex digits over the profile's parameters and its settings of reference systems."""
        return _identity_hash(self)

    @property
    def identity(self) -> str:
        """``<name>@<identity_hash>``: what jobs, calculations and models are keyed by."""
        return f"{self.name}{IDENTITY_SEP}{self.identity_hash}"


IDENTITY_SEP = "@"
IDENTITY_PATTERN = re.compile(r"^([a-z0-9][a-z0-9-]*)(?:@([0-9a-f]{8}))?$")


def _reference_systems() -> dict[str, Atoms]:
    """One small system per kind, magnetic so that the spin settings count too."""
    bulk = Atoms("Ni", cell=[[0, 1.76, 1.76], [1.76, 0, 1.76], [1.76, 1.76, 0]], pbc=True)
    slab = Atoms("Ni2", positions=[[0, 0, 10], [1.25, 0.72, 12]], cell=[2.5, 2.5, 22])
    slab.pbc = (True, True, False)
    adslab = slab + Atoms("H", positions=[[0, 0, 13.5]])
    gas = Atoms("CO", positions=[[0, 0, 0], [0, 0, 1.14]], cell=[10, 10, 10])
    return {"bulk": bulk, "slab": slab, "adslab": adslab, "gas": gas}


@cache
def _identity_hash(profile: Profile) -> str:
    references = _reference_systems()
    payload = json.dumps(
        {
            "parameters": asdict(profile),
            "settings": {kind: profile.settings(kind, references[kind]) for kind in KINDS},
        },
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha1(payload.encode()).hexdigest()[:8]


def hash_settings(profile: str, kind: str, settings: dict[str, Any]) -> str:
    """Stable hash of a settings dict (sorted-key JSON with the profile name and kind)."""
    payload = json.dumps(
        {"profile": profile, "kind": kind, "settings": settings},
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha1(payload.encode()).hexdigest()[:12]


PROFILES: dict[str, Profile] = {
    "emt": Profile(name="emt", code="emt", fmax=0.05, max_steps=300),
    "gpaw": Profile(name="gpaw", code="gpaw"),
    "gpaw-fast": Profile(
        name="gpaw-fast",
        code="gpaw",
        xc="RPBE",
        ecut_bulk=250.0,
        ecut_surface=200.0,
        bulk_kpt_length=6.0,
        slab_kpt_length=6.0,
        smearing=0.1,
        gas_smearing=0.1,
        convergence=(("density", 1e-3), ("eigenstates", 1e-6)),
        fmax=0.1,
        max_steps=30,
    ),
}


def split_identity(value: str) -> tuple[str, str | None]:
    """``"gpaw@1a2b3c4d"`` -> ``("gpaw", "1a2b3c4d")``, ``"gpaw"`` -> ``("gpaw", None)``;
    ValueError for anything else."""
    match = IDENTITY_PATTERN.match(value) if isinstance(value, str) else None
    if match is None:
        raise ValueError(
            f"not a calculator profile: {value!r} (a name such as gpaw, or name@8 hex digits)"
        )
    return match.group(1), match.group(2)


def get_profile(name: str) -> Profile:
    """Look a profile up by name or identity; ValueError naming the known ones otherwise, and
    for an identity whose settings are not this code's profile's."""
    base, digest = split_identity(name)
    try:
        profile = PROFILES[base]
    except KeyError:
        known = ", ".join(sorted(PROFILES))
        raise ValueError(f"unknown calculator profile '{base}' (known: {known})") from None
    if digest is not None and digest != profile.identity_hash:
        raise ValueError(
            f"calculator profile {name} is not this code's {base} ({profile.identity}): "
            "its settings differ"
        )
    return profile


def code_versions() -> dict[str, str]:
    """Versions of python, ase, numpy and (when installed) gpaw, read from package metadata."""
    versions = {"python": platform.python_version()}
    for package in ("ase", "numpy", "scipy", "gpaw"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    return versions
