"""``screener demo``: the whole loop on a laptop, with EMT as a toy oracle, and its HTML report.

Seeds a small EMT-covered space, runs the daemon for a few cycles with the ``emt`` profile and
FireWorks rockets in the daemon's process, then prints candidate tables and the
learning curve and writes ``<data_dir>/report.html`` (:mod:`screener.report`).
"""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from typing import Any

import numpy as np

from screener.candidates import candidates, surface_docs, surface_energies
from screener.queries import get_space
from screener.settings import load_settings
from screener.store.documents import Calculation, Cycle, Job

DEMO_ELEMENTS = "Ag,Au,Cu,Pd,Pt"

NOTICE = (
    "EMT is a toy potential (effective-medium theory, ASE's built-in for Al, Cu, Ag, Au, Ni, Pd, "
    "Pt with H, C, N, O): it runs the whole loop in minutes, but its adsorption energies are not "
    "DFT and say nothing about real catalysts. The same loop with GPAW (RPBE, plane waves) is the "
    "production path; the numbers in this report exercise the machinery only."
)


def how_to_gpaw(space: str, elements: str) -> str:
    return (
        f"screener seed --elements {elements}\n"
        f"screener run --space {space} --calculator gpaw      # the daemon (SIGTERM stops it)\n"
        f"screener candidates --space {space} --adsorbate CO --calculator gpaw\n"
        "# on a cluster: SCREENER_MONGO_URI=mongodb://... and qlaunch with deploy/fireworks/*"
    )


def _targets() -> dict[str, dict[str, float]]:
    settings = load_settings()
    goals = {a: settings.target_window(a) for a in ("CO", "H")}
    return {a: {"target": g.target, "window": g.window} for a, g in goals.items()}


def report_data(space: str, profile: str) -> dict[str, Any]:
    """Everything :func:`screener.report.write_report` draws, from the store (must be open)."""
    doc = get_space(space)
    targets = _targets()
    per_ads = {a: surface_energies(space, a, profile) for a in doc.adsorbates}
    ids = sorted({sid for rows in per_ads.values() for sid in rows})
    docs = surface_docs(ids)
    surfaces = []
    for sid in ids:
        surface = docs.get(sid, {})
        row = {
            "surface": surface.get("key"),
            "bulk_formula": surface.get("bulk_formula"),
            "miller": surface.get("miller"),
        }
        for adsorbate in ("CO", "H"):
            entry = per_ads.get(adsorbate, {}).get(sid)
            row[adsorbate] = (
                None if entry is None else {k: entry[k] for k in ("energy", "std", "source")}
            )
        surfaces.append(row)

    # predictions made when the loop chose a site, against what the calculation gave
    energies = {
        c["key"]: c
        for c in Calculation._get_collection().find(
            {"kind": "adslab", "state": "done", "profile": profile},
            {"key": 1, "adsorption_energy": 1, "flags": 1},
        )
    }
    parity: dict[str, dict[str, list]] = {
        a: {"calculated": [], "predicted": [], "std": []} for a in doc.adsorbates
    }
    hits_by_cycle: dict[str, Counter] = {a: Counter() for a in doc.adsorbates}
    done_by_cycle: Counter = Counter()
    for job in Job._get_collection().find({"space": space, "profile": profile, "state": "done"}):
        calc = energies.get(f"adslab:{job['key']}")
        if calc is None or calc.get("flags"):
            continue
        energy = calc["adsorption_energy"]
        adsorbate = job["adsorbate"]
        done_by_cycle[job.get("cycle") or 0] += 1
        target = targets[adsorbate]
        if abs(energy - target["target"]) <= target["window"]:
            hits_by_cycle[adsorbate][job.get("cycle") or 0] += 1
        predicted = job.get("predicted") or {}
        if predicted.get("mean") is not None:
            parity[adsorbate]["calculated"].append(energy)
            parity[adsorbate]["predicted"].append(predicted["mean"])
            parity[adsorbate]["std"].append(predicted.get("std"))

    curve, cycles = [], []
    done_so_far = 0
    hits_so_far: Counter = Counter()
    for cycle in Cycle.objects(space=space, profile=profile).order_by("number"):
        done_so_far += done_by_cycle.get(cycle.number, 0)
        for adsorbate in doc.adsorbates:
            hits_so_far[adsorbate] += hits_by_cycle[adsorbate].get(cycle.number, 0)
        models = cycle.models or {}
        curve.append(
            {
                "cycle": cycle.number,
                "calculations": done_so_far,
                "mae": {a: (models.get(a) or {}).get("cv", {}).get("mae") for a in doc.adsorbates},
                "coverage90": {
                    a: (models.get(a) or {}).get("cv", {}).get("coverage90") for a in doc.adsorbates
                },
                "hits": dict(hits_so_far),
            }
        )
        counts = cycle.counts or {}
        worked = counts.get("worker_ingested") or {}
        cycles.append(
            {
                "cycle": cycle.number,
                "submitted": counts.get("submitted", 0),
                "finished": worked.get("adslab_done", 0),
                "failed": worked.get("adslab_failed", 0),
                "seconds": cycle.seconds,
                "model_versions": {a: (m or {}).get("version") for a, m in models.items()},
            }
        )
    return {
        "title": f"screener: {space} ({profile})",
        "space": space,
        "profile": profile,
        "generated": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "notice": NOTICE if profile == "emt" else "",
        "how_to_gpaw": how_to_gpaw(space, ",".join(doc.elements)),
        "targets": targets,
        "surfaces": surfaces,
        "candidates": {a: candidates(space, a, profile=profile, limit=10) for a in doc.adsorbates},
        "parity": parity,
        "curve": curve,
        "cycles": cycles,
    }


def parity_mae(parity: dict[str, dict[str, list]]) -> dict[str, float | None]:
    out: dict[str, float | None] = {}
    for adsorbate, pairs in parity.items():
        if pairs["calculated"]:
            diff = np.array(pairs["calculated"]) - np.array(pairs["predicted"])
            out[adsorbate] = float(np.abs(diff).mean())
        else:
            out[adsorbate] = None
    return out


def hits_found(data: dict[str, Any]) -> dict[str, int]:
    last = data["curve"][-1]["hits"] if data["curve"] else {}
    return defaultdict(int, last)
