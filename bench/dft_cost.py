"""DFT cost per adsorption energy, with and without an EMT pre-relaxation, in the same run.

CO on top and H in the fcc hollow of Cu(111) 2x2x3 (a = 3.66 A, as in shared/domain.md), the
bottom layer fixed.  The gas references and the bare slab are relaxed once; each adsorbate+slab is
relaxed twice with the chosen profile: from the placed geometry, and from its EMT-relaxed geometry
(``workflows.tasks.emt_prerelax``, what ``SCREENER_PRERELAX=true`` switches on).  Printed per
adsorbate: wall time and ionic steps of both, their ratios, and the change of dE.  The project
keeps pre-relaxation only if it cuts ionic steps without moving dE by more than 0.05 eV.

    .venv/bin/python bench/dft_cost.py                       # gpaw profile: about an hour here
    .venv/bin/python bench/dft_cost.py --profile gpaw-fast   # minutes: checks the script

Nothing is asserted; numbers are printed (``--json`` for one object).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from ase.build import add_adsorbate, fcc111
from ase.constraints import FixAtoms

from workflows.adsorbates import get_adsorbate
from workflows.adsorption import adsorption_energy, gas_molecule, references
from workflows.calculate import relax
from workflows.structures import atoms_from_dict
from workflows.tasks import emt_prerelax

CASES = (("CO", "ontop"), ("H", "fcc"))


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def cu111():
    """Cu(111) 2x2x3, 10 A vacuum per side, layers tagged 1 (top) to 3, bottom layer fixed."""
    slab = fcc111("Cu", size=(2, 2, 3), a=3.66, vacuum=10.0)
    slab.set_constraint(FixAtoms(mask=slab.get_tags() == 3))
    return slab


def adslab(relaxed_slab, adsorbate: str, site: str):
    """The adsorbate's binding atom about one bond length above the site (tag 0), placed with
    ASE's site names on the unrelaxed slab and moved with the relaxed top layer."""
    ads = get_adsorbate(adsorbate)
    reference = cu111()
    height = {"ontop": ads.bond_length("Cu"), "fcc": 0.9 if adsorbate == "H" else 1.3}[site]
    add_adsorbate(reference, ads.atoms([0, 0, 0]), height, site, mol_index=0)
    molecule = reference[len(relaxed_slab) :]
    molecule.set_tags(0)
    top = relaxed_slab.positions[:, 2].max() - reference.positions[: len(relaxed_slab), 2].max()
    molecule.positions[:, 2] += top
    return relaxed_slab + molecule


def timed(label: str, function, *args, **kwargs) -> dict[str, Any]:
    log(f"{label} ...")
    start = time.perf_counter()
    result = function(*args, **kwargs)
    result["bench_wall"] = time.perf_counter() - start
    log(f"{label}: {result['bench_wall']:.1f} s, {result['ionic_steps']} ionic steps")
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="gpaw", help="gpaw (default) or gpaw-fast")
    parser.add_argument("--ranks", type=int, default=int(os.environ.get("SCREENER_MPI_RANKS", 2)))
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--adsorbates", default="CO,H", help="cases to run: CO (top), H (fcc)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="screener-dft-cost-"))
    run = {"profile": args.profile, "ranks": args.ranks, "workdir": str(workdir)}

    def calc(label: str, atoms, kind: str) -> dict[str, Any]:
        return timed(
            label, relax, atoms, args.profile, kind, workdir=workdir / label, ranks=args.ranks
        )

    wanted = args.adsorbates.split(",")
    cases = [(a, site) for a, site in CASES if a in wanted]
    if not cases or len(cases) != len(set(wanted)):
        parser.error(f"--adsorbates: choose from {', '.join(a for a, _ in CASES)}")
    molecules = sorted({name for a, _ in cases for name, _ in references(a)})
    gas = {m: calc(f"gas-{m}", gas_molecule(m), "gas")["energy"] for m in molecules}
    slab_result = calc("slab", cu111(), "slab")
    relaxed_slab = atoms_from_dict(slab_result["atoms"])
    rows = {}
    for adsorbate, site in cases:
        placed = adslab(relaxed_slab, adsorbate, site)
        plain = calc(f"{adsorbate}-{site}", placed, "adslab")
        start, pre = emt_prerelax(
            placed, args.profile, "adslab", workdir=workdir / f"{adsorbate}-emt"
        )
        warm = calc(f"{adsorbate}-{site}-prerelaxed", start, "adslab")
        de_plain, _ = adsorption_energy(plain["energy"], slab_result["energy"], gas, adsorbate)
        de_warm, _ = adsorption_energy(warm["energy"], slab_result["energy"], gas, adsorbate)
        rows[f"{adsorbate} {site}"] = {
            "dE": de_plain,
            "dE_prerelaxed": de_warm,
            "dE_change": de_warm - de_plain,
            "steps": plain["ionic_steps"],
            "steps_prerelaxed": warm["ionic_steps"],
            "wall": plain["bench_wall"],
            "wall_prerelaxed": warm["bench_wall"],
            "emt_steps": pre["ionic_steps"] if pre else None,
            "steps_ratio": warm["ionic_steps"] / max(plain["ionic_steps"], 1),
            "wall_ratio": warm["bench_wall"] / plain["bench_wall"],
        }
    run.update(
        gas=gas,
        slab_wall=slab_result["bench_wall"],
        slab_steps=slab_result["ionic_steps"],
        cases=rows,
    )
    if args.json:
        print(json.dumps(run, indent=2))
        return 0
    print(
        f"profile {args.profile}, {args.ranks} MPI ranks; slab relaxation "
        f"{slab_result['bench_wall']:.0f} s, {slab_result['ionic_steps']} steps"
    )
    for name, row in rows.items():
        print(
            f"{name}: dE {row['dE']:+.3f} eV in {row['wall']:.0f} s / {row['steps']} steps; "
            f"EMT-prerelaxed dE {row['dE_prerelaxed']:+.3f} eV in {row['wall_prerelaxed']:.0f} s"
            f" / {row['steps_prerelaxed']} steps (EMT {row['emt_steps']} steps)"
        )
        print(
            f"  ratio steps prerelaxed/plain: {row['steps_ratio']:.2f}; wall: "
            f"{row['wall_ratio']:.2f}; dE change {row['dE_change']:+.3f} eV"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
