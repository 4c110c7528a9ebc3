"""Run one GPAW relaxation under MPI: ``gpaw python -m workflows.gpaw_run in.json out.json``.

Started by :func:`workflows.calculate.relax` (``mpiexec -n N`` in front for N > 1 ranks).
``in.json`` holds ``atoms`` (structure dict), ``kind``, ``settings`` (a profile's settings,
overrides applied) and ``walltime`` (seconds or null). Every rank runs the same relaxation; rank 0
alone writes files: the trajectory and optimizer log (through ASE), GPAW's text output and
``out.json``, which is
either ``{"ok": true, "result": {...}}`` or ``{"ok": false, "reason", "message", "last_atoms"}``
(turned back into :class:`workflows.calculate.CalculationError` by the caller). Files are written
next to ``in.json``.
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms

from workflows.calculate import CalculationError, run_optimizer
from workflows.profiles import code_versions
from workflows.structures import atoms_from_dict, atoms_to_dict

#: Settings keys passed straight to ``gpaw.GPAW`` (None values are left to GPAW's defaults).
GPAW_KEYS = (
    "mode",
    "xc",
    "kpts",
    "occupations",
    "spinpol",
    "mixer",
    "convergence",
    "maxiter",
    "eigensolver",
)


def build_calculator(atoms: Atoms, settings: dict[str, Any], workdir: Path) -> Any:
    """GPAW calculator for ``settings``; sets the initial magnetic moments of ``atoms``.

    Parameters
    ----------
    atoms
        The structure; its initial magnetic moments are set from ``settings["magmoms"]``.
    settings
        A GPAW profile's settings (:meth:`workflows.profiles.Profile.settings`).
    workdir
        Directory of the text output ``settings["txt"]``.
    """
    from gpaw import GPAW

    kwargs = {key: settings[key] for key in GPAW_KEYS if settings.get(key) is not None}
    magmoms = settings.get("magmoms") or {}
    if settings.get("spinpol"):
        atoms.set_initial_magnetic_moments(
            [magmoms.get(symbol, 0.0) for symbol in atoms.get_chemical_symbols()]
        )
    txt = str(workdir / settings["txt"]) if settings.get("txt") else None
    return GPAW(txt=txt, **kwargs)


def _agree(flag: bool) -> bool:
    """Rank 0's decision, broadcast to every rank (keeps the ranks in step)."""
    from gpaw.mpi import world

    buffer = np.array([1 if flag else 0])
    world.broadcast(buffer, 0)
    return bool(buffer[0])


def run(data: dict[str, Any], workdir: Path) -> dict[str, Any]:
    """Relax ``data["atoms"]``; return the ``out.json`` document (on every rank)."""
    from gpaw import KohnShamConvergenceError
    from gpaw.mpi import world

    start = time.monotonic()
    settings = data["settings"]
    walltime = data.get("walltime")
    deadline = None if walltime is None else start + float(walltime)
    atoms = atoms_from_dict(data["atoms"])
    try:
        atoms.calc = build_calculator(atoms, settings, workdir)
        result = run_optimizer(
            atoms, settings["relax"], workdir=workdir, deadline=deadline, agree=_agree
        )
        magmoms = None
        if settings.get("spinpol"):
            magmoms = [float(m) for m in atoms.calc.get_magnetic_moments()]
        result.update(magmoms=magmoms, code_versions=code_versions(), ranks=int(world.size))
        return {"ok": True, "result": result}
    except CalculationError as error:
        return {"ok": False, **error.to_dict()}
    except KohnShamConvergenceError as error:
        maxiter = settings.get("maxiter")
        message = f"SCF not converged in {maxiter} iterations ({type(error).__name__})"
        return {"ok": False, "reason": "scf", "message": message, "last_atoms": _dict(atoms)}
    except Exception as error:
        message = f"{type(error).__name__}: {error}\n{traceback.format_exc()[-3000:]}"
        return {"ok": False, "reason": "crash", "message": message, "last_atoms": _dict(atoms)}


def _dict(atoms: Atoms) -> dict[str, Any]:
    return atoms_to_dict(atoms.copy())


def main(argv: list[str] | None = None) -> int:
    """Entry point: ``in.json out.json``."""
    from gpaw.mpi import world

    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("usage: gpaw python -m workflows.gpaw_run in.json out.json", file=sys.stderr)
        return 2
    in_path, out_path = Path(args[0]), Path(args[1])
    data = json.loads(in_path.read_text())
    document = run(data, in_path.resolve().parent)
    if world.rank == 0:
        tmp = out_path.with_name(out_path.name + ".tmp")
        tmp.write_text(json.dumps(document))
        os.replace(tmp, out_path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
