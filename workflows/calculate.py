"""One relaxation recipe for every calculator code.

:func:`relax` takes a structure, a profile (:mod:`workflows.profiles`) and a kind, relaxes the
structure and returns a JSON-safe result; every way a relaxation can fail is a
:class:`CalculationError` with a machine-readable ``reason`` and, where there is one, the geometry
to restart from. EMT runs in this process; GPAW runs in a subprocess under MPI
(``mpiexec -n N gpaw python -m workflows.gpaw_run in.json out.json``), so a crashing or hanging
DFT code never takes the caller down with it.

Overrides
---------
``relax(..., overrides=...)`` changes the profile's settings for one run (the retry ladder's lever);
unknown keys are a ValueError.

All codes:

``fmax`` (float, eV/A), ``max_steps`` (int), ``optimizer`` (``"BFGS"``, ``"LBFGS"``, ``"FIRE"``),
``maxstep`` (float, largest displacement per ionic step, A)
    Change ``settings["relax"]``.

GPAW only (other codes ignore them, so a retry ladder need not know the code; they still appear
in the result's ``overrides``):

``mixer`` (dict, e.g. ``{"beta": 0.025, "nmaxold": 5, "weight": 50}``; ``"name"`` picks
``"pulay"``/``"msr1"``, otherwise GPAW's default mixer)
    Merged into ``settings["mixer"]``.
``smearing`` (float, eV)
    Fermi-Dirac width, ``settings["occupations"]["width"]``.
``maxiter`` (int)
    Most SCF iterations per ionic step.
``convergence`` (dict, e.g. ``{"density": 1e-3}``)
    Merged into the SCF convergence criteria.
``eigensolver`` (str or dict, e.g. ``"rmm-diis"``)
    GPAW eigensolver.

Errors
------
``CalculationError.reason`` is one of :data:`REASONS`:

``"scf"``
    GPAW's SCF did not converge within ``maxiter`` (``last_atoms``: the geometry it failed on).
``"steps"``
    ``max_steps`` ionic steps without reaching ``fmax`` (``last_atoms``: the last geometry).
``"walltime"``
    The walltime budget ran out (checked between ionic steps; a GPAW subprocess still running
    :func:`walltime_grace` later is killed). ``last_atoms``: the last geometry.
``"crash"``
    The GPAW subprocess raised (``last_atoms``: the geometry it was at) or died without a result
    (``last_atoms``: the last trajectory frame, if any).
"""

from __future__ import annotations

import copy
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms

from workflows.profiles import Profile, code_versions, get_profile, hash_settings
from workflows.structures import atoms_from_dict, atoms_to_dict

REASONS = ("scf", "steps", "walltime", "crash")
OPTIMIZERS = ("BFGS", "LBFGS", "FIRE")
RELAX_OVERRIDES = ("fmax", "max_steps", "optimizer", "maxstep")
GPAW_OVERRIDES = ("mixer", "smearing", "maxiter", "convergence", "eigensolver")

TRAJECTORY = "relax.traj"
LOGFILE = "relax.log"
GPAW_INPUT = "in.json"
GPAW_OUTPUT = "out.json"
GPAW_STDOUT = "gpaw_run.out"


def walltime_grace(walltime: float) -> float:
    """Seconds past ``walltime`` after which a GPAW subprocess is killed: max(60 s, 10 %)."""
    return max(60.0, 0.1 * walltime)


class CalculationError(Exception):
    """A relaxation that did not produce a result.

    Parameters
    ----------
    message
        What happened, for people.
    reason
        One of :data:`REASONS`.
    last_atoms
        Geometry to restart from (with tags and fixed atoms), or None.
    """

    def __init__(self, message: str, reason: str, last_atoms: Atoms | None = None) -> None:
        if reason not in REASONS:
            raise ValueError(f"unknown failure reason '{reason}' (known: {', '.join(REASONS)})")
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message
        self.last_atoms = last_atoms

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.message, self.reason, self.last_atoms))

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form (``reason``, ``message``, ``last_atoms`` as a structure dict or None)."""
        last = atoms_to_dict(self.last_atoms) if self.last_atoms is not None else None
        return {"reason": self.reason, "message": self.message, "last_atoms": last}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CalculationError:
        """Inverse of :meth:`to_dict`."""
        last = data.get("last_atoms")
        atoms = atoms_from_dict(last) if last else None
        return cls(data["message"], reason=data["reason"], last_atoms=atoms)


def apply_overrides(settings: dict[str, Any], overrides: dict[str, Any] | None) -> dict[str, Any]:
    """Return a copy of ``settings`` with ``overrides`` applied (vocabulary: module docstring).

    Raises
    ------
    ValueError
        For an unknown key or an unknown optimizer.
    """
    new = copy.deepcopy(settings)
    for key, value in (overrides or {}).items():
        if key in RELAX_OVERRIDES:
            if key == "optimizer" and value not in OPTIMIZERS:
                raise ValueError(f"unknown optimizer '{value}' (known: {', '.join(OPTIMIZERS)})")
            new["relax"][key] = value
        elif key in GPAW_OVERRIDES:
            if new.get("calculator") != "gpaw":
                continue  # a code-agnostic retry ladder may send them; EMT has no SCF
            if key == "mixer":
                new["mixer"] = {**(new.get("mixer") or {}), **value}
            elif key == "convergence":
                new["convergence"] = {**(new.get("convergence") or {}), **value}
            elif key == "smearing":
                new["occupations"] = {**new["occupations"], "width": float(value)}
            else:
                new[key] = value
        else:
            known = ", ".join(RELAX_OVERRIDES + GPAW_OVERRIDES)
            raise ValueError(f"unknown override '{key}' (known: {known})")
    return new


def _snapshot(atoms: Atoms) -> Atoms:
    """Copy of ``atoms`` without calculator (positions, cell, tags, constraints)."""
    return atoms.copy()


def max_force(atoms: Atoms) -> float:
    """Largest force norm on the free atoms (eV/A); forces on fixed atoms are zeroed by FixAtoms."""
    forces = atoms.get_forces()
    return float(np.sqrt((forces**2).sum(axis=1)).max()) if len(forces) else 0.0


def run_optimizer(
    atoms: Atoms,
    relax: dict[str, Any],
    *,
    workdir: str | Path,
    deadline: float | None = None,
    slow_steps: float = 0.0,
    agree: Callable[[bool], bool] | None = None,
) -> dict[str, Any]:
    """Relax ``atoms`` (calculator attached) as ``relax`` settings say; shared by all codes.

    Parameters
    ----------
    atoms
        Structure with its calculator; relaxed in place.
    relax
        ``settings["relax"]`` of a profile.
    workdir
        Where the trajectory (:data:`TRAJECTORY`) and optimizer log (:data:`LOGFILE`) go.
    deadline
        ``time.monotonic()`` value after which no further ionic step is started.
    slow_steps
        Seconds to wait after each ionic step (fault tests only: see :func:`slow_steps_for`).
    agree
        Makes a stop decision collective (under MPI: rank 0's decision broadcast to all ranks).

    Returns
    -------
    dict
        ``energy``, ``max_force``, ``ionic_steps``, ``converged``, ``atoms`` (structure dict).

    Raises
    ------
    CalculationError
        ``"steps"`` or ``"walltime"``, with the last geometry.
    """
    from ase.filters import FrechetCellFilter
    from ase.optimize import BFGS, FIRE, LBFGS

    agree = agree or (lambda flag: flag)
    optimizers = {"BFGS": BFGS, "LBFGS": LBFGS, "FIRE": FIRE}
    workdir = Path(workdir)
    target = FrechetCellFilter(atoms) if relax.get("relax_cell") else atoms
    steps = int(relax["max_steps"])
    converged = False
    with optimizers[relax["optimizer"]](
        target,
        trajectory=str(workdir / TRAJECTORY),
        logfile=str(workdir / LOGFILE),
        maxstep=relax.get("maxstep"),
    ) as opt:
        for converged in opt.irun(fmax=float(relax["fmax"]), steps=steps):
            if converged:
                break
            if slow_steps:
                time.sleep(slow_steps)
            if deadline is not None and agree(time.monotonic() > deadline):
                raise CalculationError(
                    f"walltime exhausted after {opt.nsteps} ionic steps "
                    f"(max force {max_force(atoms):.3f} eV/A)",
                    reason="walltime",
                    last_atoms=_snapshot(atoms),
                )
        nsteps = opt.nsteps
    if not converged and steps > 0:
        raise CalculationError(
            f"not converged to fmax={relax['fmax']} eV/A in {nsteps} ionic steps "
            f"(max force {max_force(atoms):.3f} eV/A)",
            reason="steps",
            last_atoms=_snapshot(atoms),
        )
    return {
        "energy": float(atoms.get_potential_energy()),
        "max_force": max_force(atoms),
        "ionic_steps": int(nsteps),
        "converged": bool(converged),
        "atoms": atoms_to_dict(atoms),
    }


@contextmanager
def _one_blas_thread() -> Iterator[None]:
    """Small dense algebra (BFGS on a 100-atom Hessian) in one BLAS thread: on a busy node,
    multithreaded OpenBLAS spends such small steps waiting for its threads (bench/README.md)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # not a dependency of the data plane; then leave BLAS as it is
        yield
        return
    with threadpool_limits(limits=1, user_api="blas"):
        yield


def gpaw_command(ranks: int, in_path: Path, out_path: Path) -> list[str]:
    """Command line running :mod:`workflows.gpaw_run` on ``ranks`` MPI ranks."""
    gpaw = str(Path(sys.executable).with_name("gpaw"))
    command = [gpaw, "python", "-m", "workflows.gpaw_run", str(in_path), str(out_path)]
    if ranks > 1:
        command = ["mpiexec", "--oversubscribe", "-n", str(ranks), *command]
    return command


def gpaw_environment() -> dict[str, str]:
    """The caller's environment plus Open MPI's run-as-root switches and one thread per rank."""
    env = dict(os.environ)
    env.update(
        OMPI_ALLOW_RUN_AS_ROOT="1",
        OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
        OPENBLAS_NUM_THREADS="1",
        OMP_NUM_THREADS="1",
    )
    # workflows must be importable in the subprocess even from an uninstalled checkout
    root = str(Path(__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    return env


SLOW_STEPS_ENV = "SCREENER_TEST_SLOW_STEPS"


def slow_steps_for(kind: str) -> float:
    """Seconds to wait after each EMT ionic step of ``kind``, from ``SCREENER_TEST_SLOW_STEPS``
    (``adslab:5``): fault tests use it to have a job still running when Slurm kills it."""
    value = os.environ.get(SLOW_STEPS_ENV, "")
    wanted, _, seconds = value.partition(":")
    try:
        return float(seconds) if wanted == kind else 0.0
    except ValueError:
        return 0.0


def last_frame(path: Path) -> Atoms | None:
    """Last readable frame of a trajectory, or None."""
    if not path.exists():
        return None
    from ase.io import read

    try:
        return read(path, index=-1)
    except Exception:  # a trajectory cut off mid-write
        return None


def _tail(path: Path, chars: int = 2000) -> str:
    try:
        return path.read_text(errors="replace")[-chars:]
    except OSError:
        return ""


def _relax_gpaw(
    atoms: Atoms,
    kind: str,
    settings: dict[str, Any],
    workdir: Path,
    ranks: int,
    walltime: float | None,
) -> dict[str, Any]:
    in_path, out_path = workdir / GPAW_INPUT, workdir / GPAW_OUTPUT
    trajectory = workdir / TRAJECTORY
    for stale in (out_path, trajectory):
        stale.unlink(missing_ok=True)
    in_path.write_text(
        json.dumps(
            {
                "atoms": atoms_to_dict(atoms),
                "kind": kind,
                "settings": settings,
                "walltime": walltime,
            }
        )
    )
    timeout = None if walltime is None else walltime + walltime_grace(walltime)
    with open(workdir / GPAW_STDOUT, "w") as stdout:
        proc = subprocess.Popen(
            gpaw_command(ranks, in_path, out_path),
            cwd=workdir,
            env=gpaw_environment(),
            stdout=stdout,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            returncode = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            raise CalculationError(
                f"GPAW still running {timeout:.0f} s after start (walltime {walltime} s); killed",
                reason="walltime",
                last_atoms=last_frame(trajectory),
            ) from None
        except BaseException:
            _kill_group(proc)
            raise
    if not out_path.exists():
        raise CalculationError(
            f"GPAW exited with code {returncode} without a result; "
            f"output ends: {_tail(workdir / GPAW_STDOUT)}",
            reason="crash",
            last_atoms=last_frame(trajectory),
        )
    data = json.loads(out_path.read_text())
    if not data["ok"]:
        raise CalculationError.from_dict(data)
    return data["result"]


def _kill_group(proc: subprocess.Popen) -> None:
    """Terminate the subprocess's own process group (mpiexec and its ranks), then reap it."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            proc.wait(timeout=10)
            break
        except subprocess.TimeoutExpired:
            continue


def relax(
    atoms: Atoms,
    profile: str | Profile,
    kind: str,
    *,
    workdir: str | Path,
    ranks: int = 1,
    overrides: dict[str, Any] | None = None,
    max_steps: int | None = None,
    walltime: float | None = None,
) -> dict[str, Any]:
    """Relax ``atoms`` with a calculator profile and return a JSON-safe result.

    Parameters
    ----------
    atoms
        Structure (tags and FixAtoms constraints are respected and kept); not modified.
    profile
        Profile or its name (:data:`workflows.profiles.PROFILES`).
    kind
        ``"bulk"`` (positions and cell relaxed), ``"slab"``, ``"adslab"`` or ``"gas"``.
    workdir
        Directory for the trajectory, logs and (GPAW) ``in.json``/``out.json``; created.
    ranks
        MPI ranks for GPAW (1: no mpiexec); ignored for EMT.
    overrides
        Setting changes for this run (vocabulary in the module docstring).
    max_steps
        Most ionic steps (overrides the profile's); 0 is a single point.
    walltime
        Budget in seconds from the call, checked between ionic steps.

    Returns
    -------
    dict
        ``energy`` (eV, ``get_potential_energy()``: for GPAW extrapolated to zero smearing),
        ``atoms`` (structure dict), ``max_force`` (eV/A, free atoms; stress not included),
        ``ionic_steps``, ``converged``, ``wall_time`` (s), ``profile`` (the name),
        ``profile_identity``, ``kind``, ``settings``
        (overrides applied), ``settings_hash`` (of the profile's settings before overrides: the
        job's identity), ``overrides``, ``code_versions``, ``magmoms`` (list or None), ``ranks``.

    Raises
    ------
    CalculationError
        See :data:`REASONS`.
    ValueError
        Unknown profile, kind or override, or elements the profile does not cover.
    """
    start = time.monotonic()
    prof = get_profile(profile) if isinstance(profile, str) else profile
    settings = prof.settings(kind, atoms)  # validates kind
    if not prof.covers(atoms):
        raise ValueError(
            f"profile '{prof.name}' does not cover {sorted(set(atoms.get_chemical_symbols()))}"
        )
    base_hash = hash_settings(prof.name, kind, settings)
    settings = apply_overrides(settings, overrides)
    if max_steps is not None:
        settings["relax"]["max_steps"] = int(max_steps)
    if ranks < 1:
        raise ValueError(f"ranks must be >= 1, got {ranks}")
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)

    if prof.code == "emt":
        from ase.calculators.emt import EMT

        work = atoms.copy()
        work.calc = EMT()
        deadline = None if walltime is None else start + walltime
        with _one_blas_thread():
            outcome = run_optimizer(
                work,
                settings["relax"],
                workdir=workdir,
                deadline=deadline,
                slow_steps=slow_steps_for(kind),
            )
        outcome.update(magmoms=None, code_versions=code_versions(), ranks=1)
    elif prof.code == "gpaw":
        remaining = None if walltime is None else walltime - (time.monotonic() - start)
        if remaining is not None and remaining <= 0:
            raise CalculationError(
                "walltime exhausted before GPAW started", reason="walltime", last_atoms=atoms.copy()
            )
        outcome = _relax_gpaw(atoms, kind, settings, workdir, ranks, remaining)
    else:
        raise ValueError(f"profile '{prof.name}' has unknown code '{prof.code}'")

    return {
        "energy": outcome["energy"],
        "atoms": outcome["atoms"],
        "max_force": outcome["max_force"],
        "ionic_steps": outcome["ionic_steps"],
        "converged": outcome["converged"],
        "wall_time": time.monotonic() - start,
        "profile": prof.name,
        "profile_identity": prof.identity,
        "kind": kind,
        "settings": settings,
        "settings_hash": base_hash,
        "overrides": dict(overrides or {}),
        "code_versions": outcome["code_versions"],
        "magmoms": outcome["magmoms"],
        "ranks": outcome["ranks"],
    }


def last_geometry(launch_dir: str | Path, kind: str) -> Atoms | None:
    """The last geometry a step of ``kind`` reached in an earlier launch directory (its newest
    try's trajectory), or None: how a rerun of a killed job resumes."""
    tries = sorted(
        Path(launch_dir).glob(f"{kind}/try*/{TRAJECTORY}"),
        key=lambda p: int(p.parent.name[3:]) if p.parent.name[3:].isdigit() else 0,
    )
    for path in reversed(tries):
        atoms = last_frame(path)
        if atoms is not None:
            return atoms
    return None
