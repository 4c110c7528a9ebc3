"""Retry ladder for failed calculations, in the spirit of custodian's error handlers.

Code-agnostic and free of I/O: a failed run raises an error object with a ``reason`` (``"scf"``,
``"steps"``, ``"walltime"`` or ``"crash"``) and, where there is one, the ``last_atoms`` it reached;
:func:`next_attempt` turns the attempt that failed into the next one, or gives up.

An *attempt* is a JSON-safe dict::

    {"try": 1,                 # 1-based
     "overrides": {},          # calculator overrides, merged over the profile's settings
     "atoms": None,            # atoms dict (workflows.structures) or None = original structure
     "history": []}            # [{"try": n, "reason": str, "action": str}, ...]

Override vocabulary: ``{"mixer": {"beta": float, "nmaxold": int, "weight": float},
"smearing": float (Fermi-Dirac width, eV), "maxiter": int}``.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any, Protocol

from ase import Atoms

from workflows.structures import atoms_to_dict

#: Reasons a calculation can fail with.
REASONS = ("scf", "steps", "walltime", "crash")

#: SCF rescue settings by escalation level (level 1 after the first SCF failure, and so on; the
#: last level is kept once reached).
SCF_LADDER: tuple[dict[str, Any], ...] = (
    {"mixer": {"beta": 0.05, "nmaxold": 5, "weight": 50.0}, "smearing": 0.2, "maxiter": 500},
    {"mixer": {"beta": 0.02, "nmaxold": 8, "weight": 100.0}, "smearing": 0.3, "maxiter": 1000},
)


class CalculationErrorLike(Protocol):
    """What the handlers read from a failure: its reason and the last geometry reached."""

    reason: str
    last_atoms: Atoms | None


def first_attempt() -> dict[str, Any]:
    """The first attempt: original structure, no overrides, no history."""
    return {"try": 1, "overrides": {}, "atoms": None, "history": []}


def _advance(
    attempt: dict[str, Any],
    reason: str,
    action: str,
    *,
    overrides: dict[str, Any] | None = None,
    atoms: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The attempt after ``attempt``: try + 1, history extended; ``None`` keeps what it had."""
    current = int(attempt.get("try", 1))
    history = copy.deepcopy(list(attempt.get("history") or []))
    history.append({"try": current, "reason": reason, "action": action})
    return {
        "try": current + 1,
        "overrides": copy.deepcopy(
            overrides if overrides is not None else dict(attempt.get("overrides") or {})
        ),
        "atoms": copy.deepcopy(atoms if atoms is not None else attempt.get("atoms")),
        "history": history,
    }


class ErrorHandler:
    """Base handler: ``check`` whether it applies to an error, ``correct`` an attempt.

    ``correct`` takes the error explicitly; without it, the error seen by the last successful
    ``check`` is used (custodian's check-then-correct order).  :func:`next_attempt` always passes
    it, so shared handler instances are safe there.
    """

    reason: str = ""

    def __init__(self) -> None:
        self._error: CalculationErrorLike | None = None

    def check(self, error: CalculationErrorLike) -> bool:
        """Whether this handler deals with ``error`` (by its ``reason``)."""
        matches = getattr(error, "reason", None) == self.reason
        if matches:
            self._error = error
        return matches

    def correct(
        self, attempt: dict[str, Any], error: CalculationErrorLike | None = None
    ) -> dict[str, Any]:
        """The next attempt after ``attempt`` failed with ``error``."""
        raise NotImplementedError

    def _resolve(self, error: CalculationErrorLike | None) -> CalculationErrorLike | None:
        return error if error is not None else self._error


class ScfHandler(ErrorHandler):
    """SCF did not converge: gentler density mixing and more smearing, escalating per failure."""

    reason = "scf"

    def correct(
        self, attempt: dict[str, Any], error: CalculationErrorLike | None = None
    ) -> dict[str, Any]:
        history = attempt.get("history") or []
        failures = 1 + sum(1 for entry in history if entry.get("reason") == self.reason)
        level = SCF_LADDER[min(failures, len(SCF_LADDER)) - 1]
        overrides = copy.deepcopy(dict(attempt.get("overrides") or {}))
        overrides["mixer"] = dict(level["mixer"])
        overrides["smearing"] = max(float(overrides.get("smearing", 0.0)), level["smearing"])
        overrides["maxiter"] = max(int(overrides.get("maxiter", 0)), level["maxiter"])
        mixer = overrides["mixer"]
        action = (
            f"scf rescue level {failures}: mixer beta={mixer['beta']} nmaxold={mixer['nmaxold']} "
            f"weight={mixer['weight']}, smearing {overrides['smearing']} eV, "
            f"maxiter {overrides['maxiter']}"
        )
        return _advance(attempt, self.reason, action, overrides=overrides)


class _ContinueHandler(ErrorHandler):
    """Continue from the last geometry reached, same overrides; unchanged when there is none."""

    def correct(
        self, attempt: dict[str, Any], error: CalculationErrorLike | None = None
    ) -> dict[str, Any]:
        error = self._resolve(error)
        last = getattr(error, "last_atoms", None)
        if last is None:
            return _advance(attempt, self.reason, "retry unchanged (no last geometry)")
        return _advance(
            attempt, self.reason, "continue from last geometry", atoms=atoms_to_dict(last)
        )


class StepsHandler(_ContinueHandler):
    """Relaxation ran out of ionic steps: continue from where it stopped."""

    reason = "steps"


class WalltimeHandler(_ContinueHandler):
    """The job hit its wall time: continue from where it stopped, same settings."""

    reason = "walltime"


class CrashHandler(_ContinueHandler):
    """The code crashed: retry from the last geometry if any, else unchanged."""

    reason = "crash"


DEFAULT_HANDLERS: tuple[ErrorHandler, ...] = (
    ScfHandler(),
    StepsHandler(),
    WalltimeHandler(),
    CrashHandler(),
)


def next_attempt(
    error: CalculationErrorLike,
    attempt: dict[str, Any],
    handlers: Sequence[ErrorHandler] = DEFAULT_HANDLERS,
    max_tries: int = 3,
) -> dict[str, Any] | None:
    """The attempt to run after ``attempt`` failed with ``error``, or None to give up.

    Parameters
    ----------
    error : CalculationErrorLike
        The failure: ``reason`` (str) and ``last_atoms`` (Atoms or None).
    attempt : dict
        The attempt that failed (see the module docstring).
    handlers : sequence of ErrorHandler
        Tried in order; the first whose ``check`` accepts the error corrects the attempt.
    max_tries : int
        Total number of tries allowed, the first included.

    Returns
    -------
    dict or None
        The corrected attempt (try + 1, history extended), or None when ``attempt["try"]`` has
        reached ``max_tries`` or no handler matches the reason; the caller then records the
        calculation as failed with ``error.reason``.
    """
    if int(attempt.get("try", 1)) >= max_tries:
        return None
    for handler in handlers:
        if handler.check(error):
            return handler.correct(attempt, error)
    return None
