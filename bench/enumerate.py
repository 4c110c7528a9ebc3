"""Benchmark the adsorption-site enumerator against pymatgen's AdsorbateSiteFinder.

Part 1 builds every slab of a 3-element space once (prototype bulks, ``make_slabs``), then times,
on that same slab list and in the same process, :func:`screener.enumerate.sites.find_sites` and
pymatgen's ``AdsorbateSiteFinder(...).find_adsorption_sites()``.  The two tools are run one after
the other ``--repeats`` times (alternating which goes first) and the median wall time of each is
reported, with sites per second, slabs per second and the ratios ours/pymatgen.  Time per slab is
the fairer comparison: the tools find different numbers of sites (ours tells fcc from hcp hollows,
finds 4-fold hollows and looks below the top layer on open surfaces).

Part 2 runs the real ``screener seed`` command on a 6-element space in a fresh data directory
(its own database server) with a local dask cluster, reports its wall time and what it stored,
then runs the same seed again (which should add nothing) and reports that time too.

Usage::

    .venv/bin/python bench/enumerate.py                 # both parts, human-readable
    .venv/bin/python bench/enumerate.py --skip-six      # part 1 only
    .venv/bin/python bench/enumerate.py --json          # one JSON object on stdout

Nothing is asserted: this prints numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

OUR_TYPES = ("ontop", "bridge", "fcc", "hcp", "4-fold")
PMG_TYPES = ("ontop", "bridge", "hollow")
# textbook symmetry-unique sites of a clean fcc metal surface, for the sanity table
EXPECTED_FCC = {
    (1, 1, 1): {"ontop": 1, "bridge": 1, "fcc": 1, "hcp": 1, "4-fold": 0},
    (1, 0, 0): {"ontop": 1, "bridge": 1, "fcc": 0, "hcp": 0, "4-fold": 1},
}
# environment variables that would point the seed at something other than a fresh local store
FOREIGN_SETTINGS = ("SCREENER_MONGO_URI", "SCREENER_DASK_SCHEDULER", "SCREENER_CONFIG_FILE")


def log(message: str) -> None:
    """Progress line on stderr (stdout carries the results)."""
    print(f"[bench] {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------------
# part 1: find_sites vs AdsorbateSiteFinder on the same slabs
# --------------------------------------------------------------------------------------------


@dataclass
class SlabCase:
    """One slab, in both representations, with the site counts each tool found on it.

    Attributes
    ----------
    bulk : str
        Key of the bulk the slab was cut from.
    prototype : str
        Prototype of that bulk (``fcc``, ``B2``, ...).
    miller : tuple of int
        Miller index of the surface.
    termination : str
        Termination label of the slab record.
    atoms : ase.Atoms
        The slab as ``make_slabs`` returns it (top side is the surface).
    structure : pymatgen.core.Structure
        The same slab converted with ``AseAtomsAdaptor`` (conversion is not timed).
    ours : Counter
        Sites per type ``find_sites`` found (filled by :func:`run_ours`).
    pymatgen : Counter
        Sites per type ``AdsorbateSiteFinder`` found (filled by :func:`run_pymatgen`).
    """

    bulk: str
    prototype: str
    miller: tuple[int, int, int]
    termination: str
    atoms: Any
    structure: Any
    ours: Counter[str] = field(default_factory=Counter)
    pymatgen: Counter[str] = field(default_factory=Counter)

    @property
    def label(self) -> str:
        return f"{self.bulk} ({''.join(map(str, self.miller))}) {self.termination}"


@dataclass
class ToolRun:
    """One pass of one tool over every slab.

    Attributes
    ----------
    seconds : float
        Wall time of the pass.
    sites : int
        Sites found on all slabs that did not fail.
    failures : list of dict
        Slabs on which the tool raised, with the error.
    """

    seconds: float
    sites: int
    failures: list[dict[str, str]]


def build_slabs(elements: list[str], max_miller: int) -> tuple[list[SlabCase], dict[str, Any]]:
    """Every slab of every prototype bulk of ``elements``, converted for pymatgen too.

    Parameters
    ----------
    elements : list of str
        Element symbols of the space.
    max_miller : int
        Largest Miller index enumerated.

    Returns
    -------
    cases : list of SlabCase
        The slabs, in bulk order.
    info : dict
        Bulk count, skipped surfaces and the time slab generation and conversion took.
    """
    from pymatgen.io.ase import AseAtomsAdaptor

    from screener.enumerate.bulks import prototype_bulks
    from screener.enumerate.slabs import SlabParams, make_slabs

    params = SlabParams(max_miller=max_miller)
    started = time.perf_counter()
    specs = prototype_bulks(elements)
    records = []
    skipped = 0
    for spec in specs:
        slabs, skips = make_slabs(spec.atoms, params)
        skipped += len(skips)
        records.extend((spec, record) for record in slabs)
    slab_seconds = time.perf_counter() - started
    started = time.perf_counter()
    cases = [
        SlabCase(
            bulk=spec.key,
            prototype=spec.prototype,
            miller=tuple(record.miller),
            termination=record.termination,
            atoms=record.atoms,
            structure=AseAtomsAdaptor.get_structure(record.atoms),
        )
        for spec, record in records
    ]
    convert_seconds = time.perf_counter() - started
    info = {
        "bulks": len(specs),
        "slabs": len(cases),
        "skipped_surfaces": skipped,
        "atoms_per_slab_mean": round(statistics.fmean(len(c.atoms) for c in cases), 1)
        if cases
        else 0.0,
        "slab_generation_s": round(slab_seconds, 3),
        "ase_to_pymatgen_s": round(convert_seconds, 3),
    }
    return cases, info


def run_ours(cases: list[SlabCase]) -> ToolRun:
    """Time ``find_sites`` on every slab and record its per-type counts.

    Parameters
    ----------
    cases : list of SlabCase
        The slabs.

    Returns
    -------
    ToolRun
        Wall time, sites found and failures.
    """
    from screener.enumerate.sites import find_sites

    total = 0
    failures: list[dict[str, str]] = []
    started = time.perf_counter()
    for case in cases:
        try:
            sites = find_sites(case.atoms)
        except Exception as exc:  # a bench reports failures, it does not stop on them
            failures.append({"slab": case.label, "error": f"{exc.__class__.__name__}: {exc}"})
            continue
        case.ours = Counter(site.site_type for site in sites)
        total += len(sites)
    return ToolRun(time.perf_counter() - started, total, failures)


def run_pymatgen(
    cases: list[SlabCase], height: float, symm_reduce: float, near_reduce: float, distance: float
) -> ToolRun:
    """Time ``AdsorbateSiteFinder(slab).find_adsorption_sites()`` on every slab.

    The finder takes the surface normal as a x b, which is +z for our slabs, and calls atoms
    within ``height`` A of the topmost one surface atoms, so it works on the top side only, as
    ``find_sites`` does.  Constructing the finder (surface-atom selection) is timed.

    Parameters
    ----------
    cases : list of SlabCase
        The slabs (their ``structure`` is used).
    height : float
        ``AdsorbateSiteFinder(height=...)``, A.
    symm_reduce, near_reduce, distance : float
        Passed to ``find_adsorption_sites``.

    Returns
    -------
    ToolRun
        Wall time, sites found (the ``all`` list) and failures.
    """
    from pymatgen.analysis.adsorption import AdsorbateSiteFinder

    total = 0
    failures: list[dict[str, str]] = []
    started = time.perf_counter()
    for case in cases:
        try:
            finder = AdsorbateSiteFinder(case.structure, height=height)
            found = finder.find_adsorption_sites(
                distance=distance, symm_reduce=symm_reduce, near_reduce=near_reduce
            )
        except Exception as exc:
            failures.append({"slab": case.label, "error": f"{exc.__class__.__name__}: {exc}"})
            continue
        case.pymatgen = Counter({kind: len(found.get(kind, [])) for kind in PMG_TYPES})
        total += len(found["all"])
    return ToolRun(time.perf_counter() - started, total, failures)


def _rate(count: float, seconds: float) -> float:
    return count / seconds if seconds > 0 else float("nan")


def _ratio(a: float, b: float) -> float:
    return a / b if b > 0 else float("nan")


def part_one(args: argparse.Namespace) -> dict[str, Any]:
    """Slabs once, then both tools ``args.repeats`` times, interleaved; medians and ratios.

    Parameters
    ----------
    args : argparse.Namespace
        Parsed command line.

    Returns
    -------
    dict
        Everything part 1 measured.
    """
    elements = _split(args.elements)
    log(f"part 1: building slabs of {','.join(elements)} (max Miller {args.max_miller})")
    cases, info = build_slabs(elements, args.max_miller)
    log(f"part 1: {info['slabs']} slabs, {info['bulks']} bulks, {info['slab_generation_s']} s")
    runs: dict[str, list[ToolRun]] = {"ours": [], "pymatgen": []}

    def ours(subset: list[SlabCase]) -> ToolRun:
        return run_ours(subset)

    def pmg(subset: list[SlabCase]) -> ToolRun:
        return run_pymatgen(
            subset, args.pmg_height, args.pmg_symm_reduce, args.pmg_near_reduce, args.pmg_distance
        )

    if cases:  # untimed warm-up: first-call imports and caches of both tools
        ours(cases[:1])
        pmg(cases[:1])
    for repeat in range(args.repeats):
        order = [("ours", ours), ("pymatgen", pmg)]
        if repeat % 2:
            order.reverse()
        for name, fn in order:
            run = fn(cases)
            runs[name].append(run)
            log(f"part 1: repeat {repeat + 1}/{args.repeats} {name}: {run.seconds:.2f} s")

    n = len(cases)
    tools: dict[str, dict[str, Any]] = {}
    for name, tool_runs in runs.items():
        seconds = statistics.median(r.seconds for r in tool_runs)
        last = tool_runs[-1]
        by_type = Counter()
        for case in cases:
            by_type.update(case.ours if name == "ours" else case.pymatgen)
        types = OUR_TYPES if name == "ours" else PMG_TYPES
        tools[name] = {
            "slabs": n,
            "failed_slabs": len(last.failures),
            "failures": last.failures,
            "sites": last.sites,
            "sites_by_type": {t: by_type.get(t, 0) for t in types},
            "seconds_median": round(seconds, 4),
            "seconds_all": [round(r.seconds, 4) for r in tool_runs],
            "sites_per_s": round(_rate(last.sites, seconds), 2),
            "slabs_per_s": round(_rate(n, seconds), 3),
            "ms_per_slab": round(1000 * seconds / n, 2) if n else float("nan"),
        }
    ours_t, pmg_t = tools["ours"], tools["pymatgen"]
    return {
        "elements": elements,
        "max_miller": args.max_miller,
        "repeats": args.repeats,
        "pymatgen_options": {
            "height": args.pmg_height,
            "symm_reduce": args.pmg_symm_reduce,
            "near_reduce": args.pmg_near_reduce,
            "distance": args.pmg_distance,
        },
        **info,
        "ours": ours_t,
        "pymatgen": pmg_t,
        "ratio_sites_per_s": round(_ratio(ours_t["sites_per_s"], pmg_t["sites_per_s"]), 3),
        "ratio_slabs_per_s": round(_ratio(ours_t["slabs_per_s"], pmg_t["slabs_per_s"]), 3),
        "sanity": sanity_table(cases),
    }


def sanity_table(cases: list[SlabCase]) -> list[dict[str, Any]]:
    """Per-type site counts of both tools on fcc(111) and fcc(100) of the first fcc element.

    Parameters
    ----------
    cases : list of SlabCase
        The slabs, after both tools have run.

    Returns
    -------
    list of dict
        One row per surface (every termination of it); ``expected`` is the textbook set of
        symmetry-unique sites and ``ours_matches`` whether ``find_sites`` found exactly that.
    """
    fcc = [c for c in cases if c.prototype == "fcc"]
    if not fcc:
        return []
    bulk = fcc[0].bulk
    rows = []
    for miller, expected in EXPECTED_FCC.items():
        for case in (c for c in fcc if c.bulk == bulk and c.miller == miller):
            ours = {t: case.ours.get(t, 0) for t in OUR_TYPES}
            rows.append(
                {
                    "slab": case.label,
                    "natoms": len(case.atoms),
                    "ours": ours,
                    "pymatgen": {t: case.pymatgen.get(t, 0) for t in PMG_TYPES},
                    "expected": expected,
                    "ours_matches": ours == expected,
                }
            )
    return rows


# --------------------------------------------------------------------------------------------
# part 2: the real seeding of a 6-element space
# --------------------------------------------------------------------------------------------


def screener_command(explicit: str | None) -> list[str]:
    """The ``screener`` console script: ``--screener``, next to this Python, or on PATH."""
    if explicit:
        return [explicit]
    beside = Path(sys.executable).parent / "screener"
    if beside.exists():
        return [str(beside)]
    found = shutil.which("screener")
    if found:
        return [found]
    return [sys.executable, "-c", "from screener.cli import main; main()"]


def run_cli(command: list[str], env: dict[str, str]) -> dict[str, Any]:
    """Run one CLI command; wall time, exit code, parsed JSON stdout (or the error).

    Parameters
    ----------
    command : list of str
        The command line.
    env : dict
        Its environment.

    Returns
    -------
    dict
        ``wall_s``, ``rc``, ``output`` (parsed JSON or None) and ``stderr_tail`` on failure.
    """
    started = time.perf_counter()
    proc = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    result: dict[str, Any] = {"wall_s": round(wall, 3), "rc": proc.returncode, "output": None}
    try:
        result["output"] = json.loads(proc.stdout)
    except json.JSONDecodeError:
        result["stdout_tail"] = proc.stdout[-2000:]
    if proc.returncode != 0 or result["output"] is None:
        result["stderr_tail"] = proc.stderr[-2000:]
    return result


def _seed_summary(run: dict[str, Any]) -> dict[str, Any]:
    out = run.get("output") or {}
    added = out.get("added") or {}
    return {
        "wall_s": run["wall_s"],
        "rc": run["rc"],
        "cli_seconds": out.get("seconds"),
        "added_bulks": added.get("bulks"),
        "added_surfaces": added.get("surfaces"),
        "added_sites": added.get("sites"),
        "enumerated_bulks": out.get("enumerated_bulks"),
        "already_enumerated_bulks": out.get("already_enumerated_bulks"),
        "skipped_surfaces": len(out.get("skipped_surfaces") or []),
        "failed": out.get("failed"),
        **({"stderr_tail": run["stderr_tail"]} if "stderr_tail" in run else {}),
    }


def part_two(args: argparse.Namespace) -> dict[str, Any]:
    """``screener seed`` of the 6-element space twice in a fresh store, plus ``status``.

    Parameters
    ----------
    args : argparse.Namespace
        Parsed command line.

    Returns
    -------
    dict
        Wall times, what each seed added and what the store holds afterwards.
    """
    elements = _split(args.six)
    cli = screener_command(args.screener)
    data_dir = Path(tempfile.mkdtemp(prefix="screener-bench-"))
    env = {k: v for k, v in os.environ.items() if k not in FOREIGN_SETTINGS}
    env["SCREENER_DATA_DIR"] = str(data_dir)
    env["SCREENER_DASK_WORKERS"] = str(args.workers)
    seed_cmd = cli + [
        "seed",
        "--elements",
        ",".join(elements),
        "--adsorbates",
        args.adsorbates,
        "--max-miller",
        str(args.max_miller),
        "--json",
    ]
    try:
        log(f"part 2: seeding {','.join(elements)} with {args.workers} dask workers in {data_dir}")
        first = run_cli(seed_cmd, env)
        log(f"part 2: first seed {first['wall_s']:.1f} s (rc {first['rc']})")
        second = run_cli(seed_cmd, env)
        log(f"part 2: repeated seed {second['wall_s']:.1f} s (rc {second['rc']})")
        status = run_cli(cli + ["status", "--json"], env)
    finally:
        if args.keep_data:
            log(f"part 2: store kept in {data_dir} (`screener db stop` ends its server)")
        else:
            from screener.store import server

            server.stop(data_dir)
            shutil.rmtree(data_dir, ignore_errors=True)
    total = (status.get("output") or {}).get("total") or {}
    return {
        "elements": elements,
        "adsorbates": args.adsorbates,
        "max_miller": args.max_miller,
        "dask_workers": args.workers,
        "command": " ".join(seed_cmd),
        "first": _seed_summary(first),
        "second": _seed_summary(second),
        "ratio_first_second_wall": round(_ratio(first["wall_s"], second["wall_s"]), 2),
        "status_wall_s": status["wall_s"],
        "store": {
            "bulks": total.get("bulks"),
            "surfaces": total.get("surfaces"),
            "sites": total.get("sites"),
        },
        **({"data_dir": str(data_dir)} if args.keep_data else {}),
    }


# --------------------------------------------------------------------------------------------
# output
# --------------------------------------------------------------------------------------------


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in counts.items())


def print_report(result: dict[str, Any]) -> None:
    """Human-readable lines, one number per line where it is meant to be quoted.

    Parameters
    ----------
    result : dict
        What :func:`main` collected.
    """
    print(f"machine: {result['machine']}")
    p1 = result.get("part1")
    if p1:
        print(
            f"== part 1: site finding on the same slabs, space {','.join(p1['elements'])}, "
            f"max Miller {p1['max_miller']}, median of {p1['repeats']} interleaved repeats"
        )
        print(
            f"slabs: {p1['slabs']} from {p1['bulks']} bulks, mean {p1['atoms_per_slab_mean']} "
            f"atoms; {p1['skipped_surfaces']} surfaces skipped; generated in "
            f"{p1['slab_generation_s']:.2f} s (not timed below); ASE->pymatgen conversion "
            f"{p1['ase_to_pymatgen_s']:.2f} s (not timed below)"
        )
        opts = p1["pymatgen_options"]
        print(
            "pymatgen AdsorbateSiteFinder: "
            + ", ".join(f"{k}={v}" for k, v in opts.items())
            + " (top side only: surface = atoms within height of the topmost, normal a x b = +z)"
        )
        for name in ("ours", "pymatgen"):
            t = p1[name]
            print(
                f"{name:9s} slabs {t['slabs']}, failed {t['failed_slabs']}, sites {t['sites']}, "
                f"wall {t['seconds_median']:.3f} s (runs: "
                f"{', '.join(f'{s:.3f}' for s in t['seconds_all'])}), "
                f"{t['sites_per_s']:.1f} sites/s, {t['slabs_per_s']:.2f} slabs/s, "
                f"{t['ms_per_slab']:.1f} ms/slab"
            )
            print(f"{'':9s} sites by type: {_counts(t['sites_by_type'])}")
            for failure in t["failures"]:
                print(f"{'':9s} FAILED on {failure['slab']}: {failure['error']}")
        print(f"ratio sites/s ours/pymatgen: {p1['ratio_sites_per_s']:.2f}")
        print(f"ratio slabs/s ours/pymatgen: {p1['ratio_slabs_per_s']:.2f}")
        if p1["sanity"]:
            print("sanity (symmetry-unique sites per type):")
        for row in p1["sanity"]:
            flag = "as expected" if row["ours_matches"] else "DIFFERS from textbook"
            print(f"  {row['slab']} ({row['natoms']} atoms)")
            print(f"    ours:     {_counts(row['ours'])}  [{flag}]")
            print(f"    pymatgen: {_counts(row['pymatgen'])}")
            print(f"    textbook: {_counts(row['expected'])}")
    p2 = result.get("part2")
    if p2:
        print(
            f"== part 2: `screener seed` of {','.join(p2['elements'])} "
            f"({p2['adsorbates']}, max Miller {p2['max_miller']}, "
            f"{p2['dask_workers']} dask workers, fresh local store)"
        )
        for name in ("first", "second"):
            s = p2[name]
            sites = s["added_sites"] or {}
            print(
                f"{name + ' seed':12s} wall {s['wall_s']:.2f} s (CLI's own clock "
                f"{s['cli_seconds']} s), rc {s['rc']}: added {s['added_bulks']} bulks, "
                f"{s['added_surfaces']} surfaces, sites {_counts(sites) or '-'}; enumerated "
                f"{s['enumerated_bulks']}, already enumerated {s['already_enumerated_bulks']}, "
                f"skipped surfaces {s['skipped_surfaces']}, failed {len(s['failed'] or [])}"
            )
            if "stderr_tail" in s:
                print(f"{'':12s} stderr: {s['stderr_tail'].strip()[-500:]}")
        store = p2["store"]
        print(
            f"store after both: {store['bulks']} bulks, {store['surfaces']} surfaces, "
            f"sites {_counts(store['sites'] or {})} (status took {p2['status_wall_s']:.2f} s)"
        )
        print(f"wall seed {len(p2['elements'])}-element space: {p2['first']['wall_s']:.2f} s")
        print(f"wall repeated seed: {p2['second']['wall_s']:.2f} s")
        print(f"ratio wall first/repeated seed: {p2['ratio_first_second_wall']:.2f}")


def _split(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command line of the bench.

    Parameters
    ----------
    argv : list of str, optional
        Arguments (default: ``sys.argv[1:]``).

    Returns
    -------
    argparse.Namespace
        The options.
    """
    parser = argparse.ArgumentParser(
        description="Site enumeration vs pymatgen AdsorbateSiteFinder; seeding wall time."
    )
    parser.add_argument("--elements", default="Cu,Pd,Ni", help="part 1 space (default Cu,Pd,Ni)")
    parser.add_argument(
        "--six", default="Ag,Au,Cu,Ni,Pd,Pt", help="part 2 space (default Ag,Au,Cu,Ni,Pd,Pt)"
    )
    parser.add_argument("--max-miller", type=int, default=2, help="largest Miller index (2)")
    parser.add_argument("--repeats", type=int, default=3, help="timed passes per tool (3)")
    parser.add_argument("--workers", type=int, default=2, help="SCREENER_DASK_WORKERS (2)")
    parser.add_argument("--adsorbates", default="CO,H", help="part 2 adsorbates (CO,H)")
    parser.add_argument("--skip-six", action="store_true", help="skip part 2")
    parser.add_argument("--skip-sites", action="store_true", help="skip part 1")
    parser.add_argument("--screener", default=None, help="screener executable for part 2")
    parser.add_argument("--keep-data", action="store_true", help="keep part 2's store")
    parser.add_argument("--pmg-height", type=float, default=0.9, help="ASF height, A (0.9)")
    parser.add_argument("--pmg-symm-reduce", type=float, default=1e-2, help="ASF symm_reduce")
    parser.add_argument("--pmg-near-reduce", type=float, default=1e-2, help="ASF near_reduce")
    parser.add_argument("--pmg-distance", type=float, default=2.0, help="ASF distance, A")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    if not 1 <= args.max_miller <= 4:
        parser.error("--max-miller must be between 1 and 4")
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the parts asked for and print the report.

    Parameters
    ----------
    argv : list of str, optional
        Command-line arguments.

    Returns
    -------
    int
        Exit status (0; a failing seed is reported, not raised).
    """
    args = parse_args(argv)
    from importlib.metadata import version

    result: dict[str, Any] = {
        "machine": f"{platform.platform()}, {os.cpu_count()} CPUs, Python "
        f"{platform.python_version()}, pymatgen {version('pymatgen')}, ase {version('ase')}, "
        f"spglib {version('spglib')}",
    }
    if not args.skip_sites:
        result["part1"] = part_one(args)
    if not args.skip_six:
        result["part2"] = part_two(args)
    if args.json:
        print(json.dumps(result, indent=2, default=str))
    else:
        print_report(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
