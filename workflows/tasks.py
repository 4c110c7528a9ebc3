"""FireWorks tasks: gas reference, bulk, slab, and adsorbate+slab relaxations with dE.

One workflow per (site, adsorbate, profile)::

    gas(CO or H2) ----------------------------.
    bulk  ->  slab (cut from the relaxed bulk)  ->  adslab (+ dE, anomaly flags)

Gas, bulk and slab fireworks of equal spec are shared between workflows through FireWorks'
exact duplicate finder: a second workflow's bulk firework links to the first one's launch instead
of running again, also while that one is still running.  Results travel to children by
``update_spec`` and are recorded in ``stored_data["screener"]`` for the control plane to ingest.

Each relaxation runs the retry ladder of :mod:`workflows.handlers`; after the last try the task
raises :class:`StepFailed`, the firework FIZZLES and its reason is in the launch's
``_exception._details``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from fireworks import FiretaskBase, FWAction, explicit_serialize

from workflows.adsorption import gas_molecule
from workflows.calculate import CalculationError, last_geometry, relax
from workflows.chain import adslab_outcome, adslab_start, slab_flags, slab_start
from workflows.handlers import first_attempt, next_attempt
from workflows.structures import atoms_from_dict, atoms_to_dict


class StepFailed(Exception):
    """A relaxation that failed on every try; ``to_dict`` is what FireWorks stores."""

    def __init__(self, key: str, reason: str, message: str, history: list[dict]) -> None:
        super().__init__(f"{key}: {reason} after {len(history)} tries: {message}")
        self.key, self.reason, self.history = key, reason, history

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "reason": self.reason, "history": self.history}


def relax_with_retries(
    atoms,
    profile: str,
    kind: str,
    *,
    key: str,
    workdir: Path,
    ranks: int = 1,
    max_tries: int = 3,
    inject: list[str] | None = None,
    prerelax: bool = False,
    resume: CalculationError | None = None,
) -> tuple[dict[str, Any], list[dict]]:
    """Relax through the retry ladder; returns (result, history) or raises StepFailed.

    ``inject`` (tests only) makes the first tries fail with the given reasons before any
    calculation starts, to exercise each rung of the ladder.

    ``resume`` (a rerun of a step whose job was killed: its reason, ``walltime`` or ``crash``,
    and the last geometry it reached) enters the ladder as a failure of the first try.
    """
    attempt = first_attempt()
    if resume is not None:
        attempt = next_attempt(resume, attempt, max_tries=max_tries) or attempt
    elif prerelax:
        atoms, prerelaxed = emt_prerelax(atoms, profile, kind, workdir=workdir / "prerelax")
    while True:
        start = atoms_from_dict(attempt["atoms"]) if attempt.get("atoms") else atoms
        number = attempt["try"]
        try:
            if inject and number <= len(inject):
                raise CalculationError(
                    f"injected {inject[number - 1]} failure",
                    reason=inject[number - 1],
                    last_atoms=start,
                )
            result = relax(
                start,
                profile,
                kind,
                workdir=workdir / f"try{number}",
                ranks=ranks,
                overrides=attempt.get("overrides") or None,
            )
            if prerelax and resume is None:
                result["prerelax"] = prerelaxed
            return result, attempt["history"]
        except CalculationError as error:
            following = next_attempt(error, attempt, max_tries=max_tries)
            if following is None:
                history = attempt["history"] + [
                    {"try": number, "reason": error.reason, "action": "gave up"}
                ]
                raise StepFailed(key, error.reason, str(error), history) from error
            attempt = following


def _ranks(fw_spec: dict, default: int) -> int:
    """MPI ranks: the worker's ``env.mpi_ranks`` (my_fworker.yaml), else SCREENER_MPI_RANKS on
    the node, else what the submitter asked for."""
    value = (fw_spec.get("_fw_env") or {}).get("mpi_ranks") or os.environ.get("SCREENER_MPI_RANKS")
    return int(value or default)


PRERELAX_KINDS = ("slab", "adslab")


def emt_prerelax(atoms, profile: str, kind: str, *, workdir: Path) -> tuple[Any, dict | None]:
    """Relax positions with EMT first when it covers the elements (slabs and adslabs only; a
    bulk's EMT lattice constant is not the DFT one).  Returns (start geometry, summary or None)."""
    from workflows.profiles import get_profile

    emt = get_profile("emt")
    if kind not in PRERELAX_KINDS or get_profile(profile).code == "emt" or not emt.covers(atoms):
        return atoms, None
    result = relax(atoms, "emt", kind, workdir=workdir)
    summary = {"ionic_steps": result["ionic_steps"], "wall_time": result["wall_time"]}
    return atoms_from_dict(result["atoms"]), summary


class _RelaxStep(FiretaskBase):
    """Shared body: build the structure, relax with retries, record and pass on the result."""

    required_params = ["key", "profile"]
    optional_params = ["ranks", "max_tries", "inject_failures", "prerelax"]
    kind = ""

    def structure(self, fw_spec: dict) -> tuple[Any, dict[str, Any]]:
        raise NotImplementedError

    def outputs(self, fw_spec: dict, result: dict, context: dict) -> tuple[dict, dict]:
        raise NotImplementedError

    def run_task(self, fw_spec: dict) -> FWAction:
        atoms, context = self.structure(fw_spec)
        resume = None
        earlier = fw_spec.get("_screener_resume") or {}
        if earlier.get("dir"):  # a rerun of a step whose job was killed: go on from its geometry
            last = last_geometry(earlier["dir"], self.kind)
            if last is not None:
                reason = earlier.get("reason") or "crash"
                resume = CalculationError(
                    f"job ended ({earlier.get('slurm_state', 'killed')})",
                    reason=reason,
                    last_atoms=last,
                )
        result, history = relax_with_retries(
            atoms,
            self["profile"],
            self.kind,
            key=self["key"],
            workdir=Path(os.getcwd()) / self.kind,
            ranks=_ranks(fw_spec, self.get("ranks", 1)),
            max_tries=int(self.get("max_tries", 3)),
            inject=self.get("inject_failures"),
            prerelax=bool(self.get("prerelax", False)),
            resume=resume,
        )
        record, update = self.outputs(fw_spec, result, context)
        record.update(
            key=self["key"],
            kind=self.kind,
            profile=result["profile_identity"],
            result=result,
            history=history,
        )
        return FWAction(stored_data={"screener": record}, update_spec=update)


@explicit_serialize
class GasReferenceTask(_RelaxStep):
    """Relax a gas molecule (``molecule``: CO or H2) in a box."""

    required_params = ["key", "profile", "molecule"]
    kind = "gas"

    def structure(self, fw_spec):
        return gas_molecule(self["molecule"]), {}

    def outputs(self, fw_spec, result, context):
        summary = {"key": self["key"], "energy": result["energy"]}
        return {"molecule": self["molecule"]}, {f"gas_{self['molecule']}": summary}


@explicit_serialize
class RelaxBulkTask(_RelaxStep):
    """Relax a bulk (positions and cell) from ``structure``."""

    required_params = ["key", "profile", "structure"]
    kind = "bulk"

    def structure(self, fw_spec):
        return atoms_from_dict(self["structure"]), {}

    def outputs(self, fw_spec, result, context):
        summary = {
            "key": self["key"],
            "energy": result["energy"],
            "atoms": result["atoms"],
            "initial": self["structure"],
        }
        return {}, {"bulk_result": summary}


@explicit_serialize
class RelaxSlabTask(_RelaxStep):
    """Cut the slab from the relaxed bulk (isotropic strain of the enumerated slab) and relax."""

    required_params = ["key", "profile", "structure"]
    kind = "slab"

    def structure(self, fw_spec):
        bulk = fw_spec["bulk_result"]
        start = slab_start(self["structure"], bulk["initial"], bulk["atoms"])
        return start.atoms, {"scale": start.scale, "initial": start.atoms}

    def outputs(self, fw_spec, result, context):
        flags = slab_flags(context["initial"], result)
        summary = {
            "key": self["key"],
            "energy": result["energy"],
            "atoms": result["atoms"],
            "initial": atoms_to_dict(context["initial"]),
            "scale": context["scale"],
            "flags": flags,
            "bulk_key": fw_spec["bulk_result"]["key"],
        }
        record = {"scale": context["scale"], "flags": flags, "bulk_key": summary["bulk_key"]}
        return record, {"slab_result": summary}


@explicit_serialize
class AdsorptionEnergyTask(_RelaxStep):
    """Place the adsorbate on the relaxed slab at its site, relax, assemble dE, flag anomalies.

    ``site``: {"id", "adsorbate", "adsorbate_position", "binding_atoms"} in the frame of the
    enumerated (unrelaxed) slab.
    """

    required_params = ["key", "profile", "site"]
    kind = "adslab"

    def structure(self, fw_spec):
        slab = fw_spec["slab_result"]
        adslab = adslab_start(
            self["site"],
            atoms_from_dict(slab["initial"]),
            atoms_from_dict(slab["atoms"]),
            slab["scale"],
        )
        return adslab, {"placed": adslab}

    def outputs(self, fw_spec, result, context):
        site, slab = self["site"], fw_spec["slab_result"]
        gas = {k.removeprefix("gas_"): v for k, v in fw_spec.items() if k.startswith("gas_")}
        outcome = adslab_outcome(
            site["adsorbate"],
            context["placed"],
            result,
            slab["energy"],
            {m: g["energy"] for m, g in gas.items()},
            slab.get("flags", []),
        )
        record = {
            "site_id": site["id"],
            "adsorbate": site["adsorbate"],
            "adsorption_energy": outcome.adsorption_energy,
            "references": outcome.references,
            "flags": outcome.flags,
            "final_site": outcome.final_site,
            "slab_key": slab["key"],
            "gas_keys": {m: g["key"] for m, g in gas.items()},
        }
        return record, {}
