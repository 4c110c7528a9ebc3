"""Retry ladder: each reason, escalation, the try limit, history and JSON-safety."""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
from ase import Atoms
from ase.build import bulk

from workflows.handlers import (
    DEFAULT_HANDLERS,
    CrashHandler,
    ScfHandler,
    StepsHandler,
    WalltimeHandler,
    first_attempt,
    next_attempt,
)
from workflows.structures import atoms_from_dict, atoms_to_dict


@dataclass
class FakeError(Exception):
    reason: str
    last_atoms: Atoms | None = None


def geometry() -> Atoms:
    return bulk("Cu", "fcc", a=3.66) * (2, 1, 1)


def test_first_attempt() -> None:
    assert first_attempt() == {"try": 1, "overrides": {}, "atoms": None, "history": []}
    assert first_attempt() is not first_attempt()


def test_scf_escalates_per_try() -> None:
    second = next_attempt(FakeError("scf"), first_attempt())
    assert second is not None
    assert second["try"] == 2
    assert second["atoms"] is None
    assert second["overrides"]["mixer"] == {"beta": 0.05, "nmaxold": 5, "weight": 50.0}
    assert second["overrides"]["smearing"] == 0.2
    third = next_attempt(FakeError("scf"), second)
    assert third is not None
    assert third["try"] == 3
    assert third["overrides"]["mixer"] == {"beta": 0.02, "nmaxold": 8, "weight": 100.0}
    assert third["overrides"]["smearing"] == 0.3
    assert third["overrides"]["maxiter"] > second["overrides"]["maxiter"]
    assert [entry["reason"] for entry in third["history"]] == ["scf", "scf"]
    assert [entry["try"] for entry in third["history"]] == [1, 2]
    assert next_attempt(FakeError("scf"), third) is None


def test_scf_keeps_other_overrides_and_larger_smearing() -> None:
    attempt = first_attempt()
    attempt["overrides"] = {"smearing": 0.25, "kpts": [4, 4, 1]}
    second = next_attempt(FakeError("scf"), attempt)
    assert second is not None
    assert second["overrides"]["smearing"] == 0.25
    assert second["overrides"]["kpts"] == [4, 4, 1]
    assert attempt["overrides"] == {"smearing": 0.25, "kpts": [4, 4, 1]}  # input untouched


def test_scf_level_counts_scf_failures_not_tries() -> None:
    second = next_attempt(FakeError("steps", geometry()), first_attempt())
    third = next_attempt(FakeError("scf"), second)
    assert third is not None
    assert third["overrides"]["mixer"]["beta"] == 0.05
    assert third["atoms"] == second["atoms"]  # scf rescue keeps the geometry it was given


def test_steps_continue_from_last_geometry() -> None:
    last = geometry()
    last.positions[0] += 0.1
    attempt = first_attempt()
    attempt["overrides"] = {"smearing": 0.1}
    second = next_attempt(FakeError("steps", last), attempt)
    assert second is not None
    assert second["try"] == 2
    assert second["overrides"] == {"smearing": 0.1}
    assert second["atoms"] == atoms_to_dict(last)
    assert np.allclose(atoms_from_dict(second["atoms"]).positions, last.positions)
    assert second["history"] == [
        {"try": 1, "reason": "steps", "action": "continue from last geometry"}
    ]


def test_walltime_continues_with_same_overrides() -> None:
    attempt = next_attempt(FakeError("scf"), first_attempt())
    assert attempt is not None
    third = next_attempt(FakeError("walltime", geometry()), attempt)
    assert third is not None
    assert third["overrides"] == attempt["overrides"]
    assert third["atoms"] == atoms_to_dict(geometry())
    assert third["history"][-1]["reason"] == "walltime"


def test_crash_with_and_without_last_geometry() -> None:
    unchanged = next_attempt(FakeError("crash"), first_attempt())
    assert unchanged is not None
    assert unchanged["atoms"] is None and unchanged["overrides"] == {}
    assert unchanged["history"][0]["action"] == "retry unchanged (no last geometry)"
    moved = next_attempt(FakeError("crash", geometry()), first_attempt())
    assert moved is not None
    assert moved["atoms"] == atoms_to_dict(geometry())


def test_max_tries_and_unknown_reason() -> None:
    attempt = first_attempt()
    for expected in (2, 3):
        attempt = next_attempt(FakeError("steps", geometry()), attempt)
        assert attempt is not None and attempt["try"] == expected
    assert next_attempt(FakeError("steps", geometry()), attempt) is None
    assert next_attempt(FakeError("steps", geometry()), attempt, max_tries=4) is not None
    assert next_attempt(FakeError("mystery"), first_attempt()) is None
    assert next_attempt(FakeError("scf"), first_attempt(), max_tries=1) is None
    assert next_attempt(FakeError("scf"), first_attempt(), handlers=[StepsHandler()]) is None


def test_handlers_check_by_reason() -> None:
    assert [type(h) for h in DEFAULT_HANDLERS] == [
        ScfHandler,
        StepsHandler,
        WalltimeHandler,
        CrashHandler,
    ]
    for handler in DEFAULT_HANDLERS:
        assert handler.check(FakeError(handler.reason))
        assert not handler.check(FakeError("other"))


def test_correct_after_check_uses_the_checked_error() -> None:
    handler = StepsHandler()
    assert handler.check(FakeError("steps", geometry()))
    corrected = handler.correct(first_attempt())
    assert corrected["atoms"] == atoms_to_dict(geometry())


def test_attempts_are_json_serialisable() -> None:
    attempt = first_attempt()
    for error in (FakeError("scf"), FakeError("walltime", geometry())):
        attempt = next_attempt(error, attempt)
        assert attempt is not None
        assert json.loads(json.dumps(attempt)) == attempt
    assert attempt["try"] == 3
    assert len(attempt["history"]) == 2
