"""The ``screener`` command line: thin; parses, calls one function, prints.

Errors the user can act on print one line, ``error: ...``, on stderr and exit nonzero (2 for bad
input, with nothing written).
"""

from __future__ import annotations

import json
import logging
import math
import sys
import time
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer
from pymongo.errors import PyMongoError
from rich.console import Console
from rich.table import Table

from screener.errors import ScreenerError
from screener.names import SITE_TYPES
from screener.surrogate.strategies import STRATEGIES
from workflows.adsorbates import ADSORBATES

#: the adsorbates the service knows, as a typer choice (checked before any file is read)
AdsorbateName = Enum("AdsorbateName", {name: name for name in ADSORBATES}, type=str)
KNOWN = ", ".join(ADSORBATES)
#: the acquisition strategies, as a typer choice
Strategy = Enum("Strategy", {name: name for name in STRATEGIES}, type=str)
StrategyOption = Annotated[Strategy, typer.Option(help="acquisition strategy")]
#: the site types, as a typer choice
SiteType = Enum("SiteType", {name: name for name in SITE_TYPES}, type=str)
DEFAULT_STRATEGY = Strategy(STRATEGIES[0])


def _name(adsorbate: AdsorbateName | None) -> str | None:
    return None if adsorbate is None else adsorbate.value


app = typer.Typer(
    help="Closed-loop active-learning screening of CO, H, O and OH adsorption sites.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
# rich wraps at 80 columns when stdout is not a terminal; tables of ids need more
out = Console(highlight=False, width=None if sys.stdout.isatty() else 140)
err = Console(stderr=True, highlight=False)


def _print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")


@app.callback()
def _main(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="log progress details")] = False,
) -> None:
    level = logging.INFO if verbose else logging.WARNING
    logging.basicConfig(
        level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    for handler in logging.getLogger().handlers:  # FireWorks' loggers run at DEBUG and propagate
        handler.setLevel(level)
    for noisy in ("distributed", "dask", "fireworks", "pymatgen"):
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))


def _progress():
    """A transient progress display on stderr (none when stderr is not a terminal)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    return Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
        disable=not err.is_terminal,
    )


def _seed(plan, settings) -> tuple[Any, float]:
    """Run a validated seed plan with a progress bar; returns (report, seconds)."""
    from screener.enumerate.seed import seed as run_seed
    from screener.store import open_store

    started = time.perf_counter()
    with open_store(settings) as store:
        with _progress() as progress:
            task = progress.add_task(f"enumerating {plan.space}", total=None)
            report = run_seed(
                plan,
                store,
                on_start=lambda n: progress.update(task, total=n),
                on_step=lambda key: progress.advance(task),
            )
    return report, time.perf_counter() - started


def _print_seed_report(report, n_bulks: int, elapsed: float) -> None:
    added = report.added
    sites = ", ".join(f"{n} {a}" for a, n in added["sites"].items())
    if report.added_anything:
        out.print(
            f"{report.space}: added {added['bulks']} bulks, {added['surfaces']} surfaces, "
            f"sites: {sites} ({elapsed:.1f} s)"
        )
    else:
        out.print(
            f"{report.space}: nothing new; all {n_bulks} bulks were already enumerated "
            f"for {','.join(report.adsorbates)} with these settings"
        )
    if report.upgraded_fingerprints:
        out.print(
            f"upgraded the fingerprints of {report.upgraded_fingerprints} stored sites to "
            "the current fingerprint version"
        )
    if report.upgraded_results:
        out.print(
            f"recomputed the fingerprints of {report.upgraded_results} stored results from "
            "their structures (current fingerprint version)"
        )
    if report.skipped_surfaces:
        out.print(
            f"skipped {len(report.skipped_surfaces)} surfaces over the atom limit "
            "(--json lists them)"
        )


def _fail_on_enumeration_errors(report) -> None:
    for failure in report.failed:
        sys.stderr.write(f"error: enumeration of {failure['bulk']} failed: {failure['error']}\n")
    if report.failed:
        raise typer.Exit(1)


@app.command()
def seed(
    elements: Annotated[
        str | None, typer.Option("--elements", "-e", help="comma-separated symbols, e.g. Cu,Pd")
    ] = None,
    adsorbates: Annotated[
        str, typer.Option("--adsorbates", "-a", help=f"comma-separated, of {KNOWN}")
    ] = "CO,H",
    bulks: Annotated[
        list[Path] | None,
        typer.Option("--bulks", help="bulk structure files (CIF, POSCAR, extxyz); repeatable"),
    ] = None,
    prototypes: Annotated[
        bool, typer.Option(help="include unary and binary prototype bulks")
    ] = True,
    name: Annotated[str | None, typer.Option(help="space name (default: Cu-Pd style)")] = None,
    max_miller: Annotated[
        int | None, typer.Option(min=1, max=4, help="largest Miller index, 1-4")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the report as JSON")] = False,
) -> None:
    """Enumerate bulks -> slabs -> symmetry-unique sites of a space and store what is new."""
    from screener.enumerate.seed import plan_seed
    from screener.settings import load_settings

    if not (elements and elements.strip()) and not bulks:
        raise typer.BadParameter("give --elements, --bulks FILE, or both", param_hint="--elements")
    settings = load_settings()
    plan = plan_seed(
        elements,
        adsorbates,
        bulk_files=list(bulks or []),
        prototypes=prototypes,
        name=name,
        max_miller=max_miller,
        settings=settings,
    )
    report, elapsed = _seed(plan, settings)
    if as_json:
        _print_json(
            {
                "space": report.space,
                "elements": report.elements,
                "adsorbates": report.adsorbates,
                "added": report.added,
                "enumerated_bulks": report.enumerated_bulks,
                "already_enumerated_bulks": report.reused_bulks,
                "upgraded_fingerprints": report.upgraded_fingerprints,
                "upgraded_results": report.upgraded_results,
                "skipped_surfaces": report.skipped_surfaces,
                "failed": report.failed,
                "seconds": round(elapsed, 2),
            }
        )
    else:
        _print_seed_report(report, len(plan.bulks), elapsed)
    _fail_on_enumeration_errors(report)


@app.command()
def demo(
    elements: Annotated[
        str,
        typer.Option("--elements", "-e", help="the demo space (EMT covers Al Cu Ag Au Ni Pd Pt)"),
    ] = "Ag,Au,Cu,Pd,Pt",
    cycles: Annotated[int, typer.Option(min=1, help="loop cycles")] = 5,
    batch: Annotated[int, typer.Option(min=1, help="sites per cycle")] = 16,
    max_miller: Annotated[int, typer.Option(min=1, max=4, help="largest Miller index")] = 1,
    report: Annotated[
        Path | None, typer.Option(help="HTML report path (default: <data_dir>/report.html)")
    ] = None,
) -> None:
    """The closed loop end to end on this machine, with EMT as a toy oracle, and an HTML report.

    Seeds the space, runs the daemon for a few cycles (FireWorks rockets in its process), prints
    candidate surfaces for CO (-0.67 eV) and H (-0.27 eV) and the learning
    curve, and writes the report.
    """
    from screener.daemon import Daemon
    from screener.demo import NOTICE, how_to_gpaw, parity_mae, report_data
    from screener.enumerate.seed import plan_seed
    from screener.report import write_report
    from screener.settings import load_settings
    from screener.store import open_store

    settings = load_settings()
    plan = plan_seed(elements, "CO,H", max_miller=max_miller, settings=settings)
    started = time.perf_counter()
    out.print(
        f"[bold]screener demo[/bold]: {plan.space}, {len(plan.bulks)} bulks (unaries; B2, L1_0, "
        f"L1_2 prototypes), Miller index <= {plan.max_miller}, store "
        f"{settings.mongo_uri and 'MongoDB' or settings.data_dir}"
    )
    out.print(f"[yellow]{NOTICE}[/yellow]")
    seeded, elapsed = _seed(plan, settings)
    _print_seed_report(seeded, len(plan.bulks), elapsed)
    _fail_on_enumeration_errors(seeded)

    def show(record: dict) -> None:
        if record.get("event") != "cycle":
            return
        counts = record["counts"]
        models = ", ".join(f"{a} v{v}" for a, v in record["models"].items()) or "none yet"
        out.print(
            f"cycle {record['cycle']}: submitted {counts['submitted']}, rockets "
            f"{counts.get('rockets', 0)}, results {record['jobs'].get('done', 0)} done / "
            f"{record['jobs'].get('failed', 0)} failed, models {models} "
            f"({record['seconds']:.1f} s)"
        )

    with open_store(settings) as store:
        Daemon(store, plan.space, "emt", cycles=cycles, batch=batch, interval=0, emit=show).run()
        data = report_data(plan.space, "emt")
        path = write_report(data, report or settings.data_dir / "report.html")

    for entry in data.adsorbates:
        _candidate_table(
            [
                {**row.as_dict(), "target": entry.target, "profile": data.profile}
                for row in entry.candidates[:8]
            ]
        )
    curve = Table(title="learning curve: predictions stored when each site was chosen, vs EMT")
    columns = ["cycle"]
    for entry in data.adsorbates:
        columns += [f"{entry.adsorbate} {c}" for c in ("results", "MAE/eV", "cov90", "hits")]
    for column in columns:
        curve.add_column(column)
    rows: dict[int, list[str]] = {}
    for index, entry in enumerate(data.adsorbates):
        hits = {h.cycle: h.hits for h in entry.hits}
        for point in entry.curve:
            cells = rows.setdefault(point.cycle, [""] * (4 * len(data.adsorbates)))
            cov = "" if point.coverage90 is None else f"{point.coverage90:.2f}"
            cells[4 * index : 4 * index + 4] = [
                str(point.calculations),
                f"{point.mae:.3f}",
                cov,
                str(hits.get(point.cycle, "")),
            ]
    for cycle in sorted(rows):
        curve.add_row(str(cycle), *rows[cycle])
    out.print(curve)
    prospective = ", ".join(f"{a} {m:.3f} eV" for a, m in parity_mae(data).items() if m is not None)
    if prospective:
        out.print(f"MAE of the predictions made before each calculation: {prospective}")
    out.print(f"report: {path}  ({time.perf_counter() - started:.0f} s in all)")
    out.print("The same loop with DFT:\n" + how_to_gpaw(plan.space, ",".join(plan.elements)))
    if not settings.mongo_uri:
        out.print(
            f"The database server of {settings.data_dir} keeps running for the next command "
            "(`screener db stop` ends it)."
        )
    command, note = _dashboard_command(settings)
    out.print(f"Watch the campaign live{note}, then open http://127.0.0.1:8050/ :", markup=False)
    out.print(f"  {command}", markup=False, soft_wrap=True)


def _dashboard_command(settings) -> tuple[str, str]:
    """The `screener dashboard` command line on the store a command just used, and a note.

    A MongoDB URI with credentials is not printed: the environment that ran the demo has it.
    """
    import shlex

    from screener.settings import ScreenerSettings

    env, note = [], ""
    if settings.mongo_uri and "@" in settings.mongo_uri:
        note = " (with this run's SCREENER_MONGO_URI)"
    elif settings.mongo_uri:
        env.append(f"SCREENER_MONGO_URI={shlex.quote(settings.mongo_uri)}")
    else:
        env.append(f"SCREENER_DATA_DIR={shlex.quote(str(settings.data_dir.resolve()))}")
    if settings.db_name != ScreenerSettings.model_fields["db_name"].default:
        env.append(f"SCREENER_DB_NAME={shlex.quote(settings.db_name)}")
    return " ".join([*env, "screener dashboard"]), note


@app.command()
def status(
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON object")] = False,
) -> None:
    """What the store holds, per space and in total."""
    from screener.queries import status as get_status
    from screener.settings import load_settings
    from screener.store import open_store

    with open_store(load_settings(), readonly=True) as store:
        data = get_status(store)
    if as_json:
        _print_json(data)
        return
    table = Table(title=f"screener store ({data['store']['kind']}: {data['store']['location']})")
    for column in ("space", "elements", "bulks", "surfaces", "sites"):
        table.add_column(column)
    rows = list(data["spaces"].items()) + [("total", {**data["total"], "elements": []})]
    for space, row in rows:
        sites = ", ".join(f"{a} {n}" for a, n in row["sites"].items())
        table.add_row(
            space, ",".join(row["elements"]), str(row["bulks"]), str(row["surfaces"]), sites
        )
    out.print(table)
    for space, row in data["spaces"].items():
        out.print(_loop_line(space, row))


def _loop_line(space: str, row: dict) -> str:
    """One line on a space's loop: daemon heartbeat, queue depth, last cycle, models."""
    daemon = row.get("daemon")
    if daemon is None:
        who = "no daemon has run"
    elif daemon["running"]:
        who = (
            f"daemon {daemon['owner']} {daemon['state']}, heartbeat "
            f"{daemon['heartbeat_age_s']:.0f} s ago"
        )
    else:
        who = f"daemon stopped (last heartbeat {daemon['heartbeat']})"
    parts = [who, f"queue {row['queued']}"]
    if row.get("paused"):
        parts.append("PAUSED")
    cycle = row.get("last_cycle")
    if cycle:
        jobs = cycle["jobs"]
        parts.append(
            f"last cycle {cycle['number']} ({cycle['profile']}) at {cycle['started']}, "
            f"{cycle['seconds']:.0f} s, jobs {jobs.get('done', 0)} done / "
            f"{jobs.get('failed', 0)} failed"
        )
    for name, model in row.get("models", {}).items():
        parts.append(f"model {name} v{model['version']} (n {model['n_train']})")
    return f"{space}: " + "; ".join(parts)


@app.command()
def sites(
    space: Annotated[str | None, typer.Option(help="space name, e.g. Cu-Pd")] = None,
    adsorbate: Annotated[AdsorbateName | None, typer.Option(help=KNOWN)] = None,
    site_type: Annotated[SiteType | None, typer.Option("--type", help="site type")] = None,
    limit: Annotated[int, typer.Option(min=0, help="at most this many (0 = all)")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="print a JSON list")] = False,
) -> None:
    """List stored adsorption sites."""
    from screener.queries import list_sites
    from screener.settings import load_settings
    from screener.store import open_store

    kind = None if site_type is None else site_type.value
    with open_store(load_settings(), readonly=True, create=False):
        rows = list_sites(space, _name(adsorbate), kind, limit)
    if as_json:
        _print_json(rows)
        return
    table = Table()
    table.add_column("id", min_width=24, no_wrap=True)
    for column, width in (("space", 5), ("ads", 3), ("type", 6), ("hkl", 3), ("bulk", 5)):
        table.add_column(column, min_width=width, no_wrap=True)
    table.add_column("binds", min_width=5)
    table.add_column("n", min_width=2)  # multiplicity
    for row in rows:
        table.add_row(
            row["id"],
            row["space"] or "",
            row["adsorbate"],
            row["site_type"],
            "".join(map(str, row["miller"])),
            row["bulk_formula"],
            " ".join(f"{k}{v}" for k, v in row["composition"].items()),
            str(row["multiplicity"]),
        )
    out.print(table)


@app.command()
def submit(
    site: Annotated[str, typer.Option("--site", help="site id, as `screener sites` prints it")],
    calculator: Annotated[
        str, typer.Option("--calculator", "-c", help="profile: gpaw, gpaw-fast or emt")
    ] = "gpaw",
    as_json: Annotated[bool, typer.Option("--json", help="print a JSON object")] = False,
) -> None:
    """Queue the adsorption-energy workflow of one site (once; again says where it stands)."""
    from screener.jobs.submit import submit as submit_site
    from screener.settings import load_settings
    from screener.store import open_store

    with open_store(load_settings(), create=False) as store:
        result = submit_site(site, calculator, store)
    if as_json:
        _print_json(result.as_dict())
    elif result.new:
        out.print(f"submitted {result.key}: fireworks {result.fw_ids}")
    else:
        out.print(
            f"nothing queued: {result.key} is already {result.state} (fireworks {result.fw_ids})"
        )


@app.command()
def workers(
    until_empty: Annotated[
        bool, typer.Option("--until-empty", help="run until no firework is READY")
    ] = True,
    max_rockets: Annotated[
        int | None, typer.Option("--max", min=1, help="at most this many")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the counts as JSON")] = False,
) -> None:
    """Run FireWorks rockets in this process against the store, recording results as they end."""
    from screener.jobs.workers import run_workers
    from screener.settings import load_settings
    from screener.store import open_store

    del until_empty  # the only mode for now: a long-running worker is the daemon's job (issue 5)
    with open_store(load_settings()) as store:
        counts = run_workers(store, max_rockets=max_rockets)
    if as_json:
        _print_json(counts)
    else:
        out.print(", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "nothing to run")


@app.command()
def results(
    space: Annotated[str | None, typer.Option(help="space name, e.g. Cu-Pd")] = None,
    adsorbate: Annotated[AdsorbateName | None, typer.Option(help=KNOWN)] = None,
    calculator: Annotated[str | None, typer.Option("--calculator", "-c", help="profile")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print a JSON list")] = False,
) -> None:
    """Adsorption energies (eV) of submitted sites, with their flags and state."""
    from screener.queries import list_results
    from screener.settings import load_settings
    from screener.store import open_store

    with open_store(load_settings(), readonly=True, create=False):
        rows = list_results(space, _name(adsorbate), calculator)
    if as_json:
        _print_json(rows)
        return
    table = Table()
    table.add_column("site", min_width=24, no_wrap=True)
    for column in ("ads", "profile", "state", "dE/eV", "flags"):
        table.add_column(column)
    for row in rows:
        energy = "" if row["energy"] is None else f"{row['energy']:+.3f}"
        table.add_row(
            row["site_id"],
            row["adsorbate"],
            row["profile"],
            row["state"],
            energy,
            ",".join(row["flags"]) or row.get("reason") or "",
        )
    out.print(table)


class Launcher(str, Enum):
    """Where the daemon's FireWorks rockets run."""

    local = "local"
    external = "external"
    slurm = "slurm"


class ExportFormat(str, Enum):
    """The formats `screener export` writes."""

    extxyz = "extxyz"
    csv = "csv"
    json = "json"


@app.command()
def export(
    space: Annotated[str, typer.Option(help="space name, e.g. Cu-Pd")],
    fmt: Annotated[ExportFormat, typer.Option("--format", "-f", help="extxyz, csv or json")],
    adsorbate: Annotated[AdsorbateName | None, typer.Option(help=KNOWN)] = None,
    calculator: Annotated[
        str | None, typer.Option("--calculator", "-c", help="profile (default: most results)")
    ] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="file to write (default: stdout)")
    ] = None,
) -> None:
    """Write a space's finished results: structures, dE, flags, predictions and provenance."""
    from screener.export import export as export_results
    from screener.settings import load_settings
    from screener.store import open_store

    with open_store(load_settings(), readonly=True, create=False):
        summary = export_results(
            space, fmt.value, adsorbate=_name(adsorbate), profile=calculator, output=output
        )
    if summary.output is not None:
        per = ", ".join(f"{n} {a}" for a, n in summary.adsorbates.items())
        sys.stderr.write(
            f"{space}: wrote {summary.records} {summary.profile} results ({per}; "
            f"{summary.flagged} flagged) to {summary.output}\n"
        )


model_app = typer.Typer(help="The surrogate on a labelled file: evaluate it by grouped CV.")
app.add_typer(model_app, name="model")


def _adsorbate_rows(data: Path, energy_key: str, group_by: str | None, adsorbate: AdsorbateName):
    """One adsorbate's rows of a labelled file (``--group-by slab``: slab identity where frames
    do not carry 'slab')."""
    from screener.surrogate.data import read_labelled

    return read_labelled(data, energy_key=energy_key, group_by=group_by, adsorbate=adsorbate.value)


DataOption = Annotated[Path, typer.Option("--data", help="labelled structures (extxyz, ASE db)")]
EnergyKeyOption = Annotated[str, typer.Option("--energy-key", help="info key of dE (eV)")]
TargetOption = Annotated[
    float | None, typer.Option(help="target dE (eV); default: the adsorbate's (settings)")
]
WindowOption = Annotated[
    float | None,
    typer.Option(min=0.001, help="half width of the target window (eV); default as target"),
]
GroupOption = Annotated[
    str | None, typer.Option("--group-by", help="info key for grouped CV (default: slab identity)")
]


@model_app.command("evaluate")
def model_evaluate(
    data: DataOption,
    adsorbate: Annotated[AdsorbateName, typer.Option(help=KNOWN)],
    energy_key: EnergyKeyOption = "E_ads",
    group_by: GroupOption = None,
    folds: Annotated[int, typer.Option(min=2, help="grouped CV folds")] = 5,
    baseline: Annotated[
        bool, typer.Option(help="also a plain random forest on shell element counts")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON object")] = False,
) -> None:
    """Grouped cross-validation of the surrogate: MAE, RMSE, 90% interval coverage, n."""
    from screener.surrogate.models import baseline_evaluate, evaluate

    with _progress() as progress:
        task = progress.add_task(f"reading {data.name}", total=None)
        rows = _adsorbate_rows(data, energy_key, group_by, adsorbate)

        def step(what: str):
            progress.update(task, description=what, completed=0, total=None)
            return lambda done, total: progress.update(task, completed=done, total=total)

        result = evaluate(rows, folds=folds, on_fold=step(f"{adsorbate.value}: grouped CV"))
        plain = None
        if baseline:
            plain = baseline_evaluate(rows, folds=folds, on_fold=step("baseline forest"))
    if as_json:
        _print_json(result if plain is None else {**result, "baseline": plain})
        return
    out.print(
        f"{adsorbate.value}, n {result['n']}, {result.get('folds', folds)}-fold grouped CV "
        f"({result.get('model')}): MAE {result['mae']:.3f} eV, RMSE {result['rmse']:.3f} eV, "
        f"90% interval coverage {result['coverage90']:.2f}"
        + (f" (energies relative to {result['reference']})" if result["reference"] else "")
    )
    if plain is not None:
        out.print(
            f"baseline RF on shell element counts: MAE {plain['mae']:.3f} eV, "
            f"RMSE {plain['rmse']:.3f} eV"
        )


def _shifts(values: list[str]) -> dict[str, float]:
    """``--shift ADS=EV`` values as adsorbate -> eV."""
    from screener.learning import SHIFT_LIMIT

    shifts: dict[str, float] = {}
    for value in values:
        name, sep, number = value.partition("=")
        name = name.strip()
        if not sep or name not in ADSORBATES:
            raise typer.BadParameter(
                f"{value!r}: expected ADS=EV, ADS one of {', '.join(ADSORBATES)}",
                param_hint="--shift",
            )
        try:
            ev = float(number)
        except ValueError:
            ev = math.nan
        if not math.isfinite(ev) or abs(ev) > SHIFT_LIMIT:
            raise typer.BadParameter(
                f"{value!r}: EV must be a finite number within {SHIFT_LIMIT:g} eV",
                param_hint="--shift",
            )
        if name in shifts:
            raise typer.BadParameter(f"{name} given twice", param_hint="--shift")
        shifts[name] = ev
    return shifts


@app.command("import")
def import_(
    data: Annotated[Path, typer.Argument(help="labelled structures (extxyz, ASE db)")],
    space: Annotated[str, typer.Option(help="the space they warm-start")],
    calculator: Annotated[
        str, typer.Option("--calculator", "-c", help="profile the results stand for")
    ] = "gpaw",
    energy_key: EnergyKeyOption = "E_ads",
    shift: Annotated[
        list[str] | None,
        typer.Option(
            help="ADS=EV: add EV to that adsorbate's energies, for a file relative to another "
            "state (info 'reference', e.g. Pt(111)): that state's dE against the gas "
            "references; repeatable"
        ),
    ] = None,
    replace: Annotated[
        bool,
        typer.Option(
            "--replace",
            help="re-import a file already in the space (e.g. under a corrected --shift), "
            "replacing its earlier results",
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON object")] = False,
) -> None:
    """Add external labelled adsorption energies to a space, with their source, for training."""
    from screener.learning import import_labelled
    from screener.settings import load_settings
    from screener.store import open_store

    shifts = _shifts(shift or [])
    with open_store(load_settings(), create=False) as store, _progress() as progress:
        progress.add_task(f"reading and fingerprinting {data.name}", total=None)
        report = import_labelled(
            store,
            data,
            space,
            profile=calculator,
            energy_key=energy_key,
            shift=shifts,
            replace=replace,
        )
    if as_json:
        _print_json(report)
        return
    added = ", ".join(f"{n} {a}" for a, n in report["added"].items()) or "nothing new"
    out.print(
        f"{space}: imported {added} as {calculator} results from {report['source']}"
        + (f" (replacing {report['replaced']})" if report["replaced"] else "")
        + (
            f" ({report['already_imported']} already there)"
            if report["already_imported"] and not report["replaced"]
            else ""
        )
    )


@app.command()
def backtest(
    data: DataOption,
    adsorbate: Annotated[AdsorbateName, typer.Option(help=KNOWN)],
    target: TargetOption = None,
    window: WindowOption = None,
    budget: Annotated[int, typer.Option(min=1, help="labels to reveal in all")] = 200,
    batch: Annotated[int, typer.Option(min=1, help="labels per round")] = 10,
    init: Annotated[int, typer.Option(min=1, help="random labels before the first model")] = 10,
    strategy: StrategyOption = DEFAULT_STRATEGY,
    compare: Annotated[
        list[Strategy] | None, typer.Option(help="strategies to compare against; repeatable")
    ] = None,
    repeats: Annotated[int, typer.Option(min=1, help="seeds to average over")] = 3,
    energy_key: EnergyKeyOption = "E_ads",
    group_by: GroupOption = None,
    fast: Annotated[
        bool, typer.Option("--fast", help="cheaper surrogate (60 extra trees, no model choice)")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON object")] = False,
) -> None:
    """Simulate a screening campaign on a labelled pool; compare strategies on the same pool."""
    from screener.settings import load_settings
    from screener.surrogate.backtest import FAST_SURROGATE
    from screener.surrogate.backtest import backtest as run_backtest

    if budget < init:
        raise typer.BadParameter(f"must be >= --init ({init})", param_hint="--budget")
    load_settings().target_window(adsorbate.value, target, window)  # before the file is read
    names = list(dict.fromkeys([strategy.value, *(c.value for c in compare or [])]))
    with _progress() as progress:
        task = progress.add_task(f"reading {data.name}", total=None)
        rows = _adsorbate_rows(data, energy_key, group_by, adsorbate)
        per_run = min(budget, len(rows))  # labels one campaign reveals at most
        progress.update(task, completed=0, total=per_run * repeats * len(names))

        def shown(name: str, repeat: int, labelled: int, found: int) -> None:
            done_before = names.index(name) * repeats + repeat  # campaigns run in this order
            progress.update(
                task,
                description=f"{name}, repeat {repeat + 1}/{repeats}: {found} hits",
                completed=done_before * per_run + labelled,
            )

        result = run_backtest(
            rows,
            strategy=strategy.value,
            compare=tuple(names[1:]),
            target=target,
            window=window,
            budget=budget,
            batch=batch,
            init=init,
            repeats=repeats,
            surrogate=FAST_SURROGATE if fast else None,
            on_round=shown,
        )
    if as_json:
        _print_json(result)
        return
    out.print(
        f"pool {result['pool']}, hits {result['hits']} within {result['target']:+.2f} +/- "
        f"{result['window']:.2f} eV; rows known by their {result['rows_known_by']}"
    )
    table = Table()
    for column in ("strategy", "calls to 90% of hits", "hits found", "MAE on rest"):
        table.add_column(column)
    for name, run in result["strategies"].items():
        last = run["curve"][-1] if run["curve"] else {}
        calls = run["calls_to_find_90pct"]
        table.add_row(
            name,
            "not reached" if calls is None else str(calls),
            f"{last.get('hits_found', 0):.1f} after {last.get('labelled', 0)}",
            f"{last.get('mae_rest', float('nan')):.3f}",
        )
    out.print(table)


@app.command()
def train(
    space: Annotated[str, typer.Option(help="space name, e.g. Cu-Pd")],
    calculator: Annotated[
        str | None, typer.Option("--calculator", "-c", help="profile (default: most results)")
    ] = None,
    adsorbate: Annotated[
        AdsorbateName | None, typer.Option(help=f"{KNOWN} (default: the space's)")
    ] = None,
    force: Annotated[bool, typer.Option(help="retrain even when nothing new arrived")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print a JSON list")] = False,
) -> None:
    """Retrain the surrogates of a space on its finished results; store a new model version."""
    from screener.learning import train as run_train
    from screener.settings import load_settings
    from screener.store import open_store

    with open_store(load_settings(), create=False) as store:
        outcomes = run_train(
            store,
            space,
            adsorbates=[adsorbate.value] if adsorbate else None,
            profile=calculator,
            force=force,
        )
    rows = [o.as_dict() for o in outcomes]
    if as_json:
        _print_json(rows)
        return
    for row in rows:
        cv = row["cv"]
        metrics = (
            f"CV MAE {cv['mae']:.3f} eV, RMSE {cv['rmse']:.3f} eV, "
            f"coverage90 {cv['coverage90']:.2f}"
            if cv
            else ""
        )
        if row["trained"]:
            out.print(
                f"{space} {row['adsorbate']} ({row['profile']}): v{row['version']} "
                f"{row['model']} on {row['n_train']} results in {row['seconds']:.1f} s; {metrics}"
            )
        else:
            out.print(
                f"{space} {row['adsorbate']} ({row['profile']}): not trained: {row['reason']}"
            )


@app.command()
def select(
    space: Annotated[str, typer.Option(help="space name, e.g. Cu-Pd")],
    n: Annotated[int, typer.Option("--batch", "--n", min=1, help="batch size")] = 20,
    calculator: Annotated[
        str | None, typer.Option("--calculator", "-c", help="profile (default: most results)")
    ] = None,
    adsorbate: Annotated[
        AdsorbateName | None, typer.Option(help=f"{KNOWN} (default: the space's)")
    ] = None,
    strategy: StrategyOption = DEFAULT_STRATEGY,
    as_json: Annotated[bool, typer.Option("--json", help="print a JSON list")] = False,
) -> None:
    """The batch of sites the loop would submit now (nothing is submitted)."""
    from screener.learning import select as run_select
    from screener.settings import load_settings
    from screener.store import open_store

    with open_store(load_settings(), readonly=True, create=False) as store:
        rows = run_select(
            store,
            space,
            n,
            profile=calculator,
            adsorbates=[adsorbate.value] if adsorbate else None,
            strategy=strategy.value,
        )
    if as_json:
        _print_json(rows)
        return
    table = Table()
    table.add_column("site", min_width=24, no_wrap=True)
    for column in ("ads", "bulk", "hkl", "type", "strategy", "mean/eV", "std/eV"):
        table.add_column(column)
    for row in rows:
        table.add_row(
            row["site_id"],
            row["adsorbate"],
            row["bulk_formula"] or "",
            "".join(map(str, row["miller"] or [])),
            row["site_type"] or "",
            row["strategy"],
            "" if row["mean"] is None else f"{row['mean']:+.3f}",
            "" if row["std"] is None else f"{row['std']:.3f}",
        )
    out.print(table)


@app.command()
def run(
    space: Annotated[str, typer.Option(help="space name, e.g. Cu-Pd")],
    calculator: Annotated[
        str, typer.Option("--calculator", "-c", help="profile: gpaw, gpaw-fast or emt")
    ] = "gpaw",
    cycles: Annotated[int | None, typer.Option(min=1, help="stop after this many cycles")] = None,
    batch: Annotated[int | None, typer.Option(min=1, help="most sites submitted per cycle")] = None,
    max_queued: Annotated[
        int | None, typer.Option(min=1, help="keep at most this many jobs READY+RUNNING")
    ] = None,
    budget: Annotated[
        int | None, typer.Option(min=1, help="stop once this many DFT jobs exist for the space")
    ] = None,
    interval: Annotated[  # max: settings.MAX_LOOP_INTERVAL (not imported here: 0.3 s start-up)
        float | None, typer.Option(min=0.0, max=86_400.0, help="seconds between cycles")
    ] = None,
    strategy: StrategyOption = DEFAULT_STRATEGY,
    workers: Annotated[
        bool | None,
        typer.Option(
            "--workers/--no-workers",
            help="run FireWorks rockets in this process (default: SCREENER_LAUNCHER=local)",
        ),
    ] = None,
    launcher: Annotated[
        Launcher | None,
        typer.Option(
            help="where rockets run: local (this process), external (rlaunch/qlaunch elsewhere) "
            "or slurm (the daemon submits Slurm jobs); default: SCREENER_LAUNCHER"
        ),
    ] = None,
    drain: Annotated[
        bool, typer.Option(help="after the last cycle, wait for the submitted jobs to finish")
    ] = False,
    seed: Annotated[
        int, typer.Option(help="random seed of the selection (cycle n uses seed + n)")
    ] = 0,
) -> None:
    """The daemon: ingest -> retrain -> score -> select -> submit, until SIGTERM or a limit.

    One JSON line per cycle on stdout.
    """
    from screener.daemon import Daemon
    from screener.settings import load_settings
    from screener.store import open_store

    with open_store(load_settings(), create=False) as store:
        daemon = Daemon(
            store,
            space,
            calculator,
            batch=batch,
            max_queued=max_queued,
            interval=interval,
            cycles=cycles,
            budget=budget,
            strategy=strategy.value,
            host_workers=workers,
            launcher=launcher.value if launcher else None,
            drain=drain,
            seed=seed,
        )
        daemon.run()


@app.command()
def dashboard(
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="port to listen on")] = 8050,
    refresh: Annotated[
        float, typer.Option(min=1.0, max=3600.0, help="seconds between overview refreshes")
    ] = 10.0,
) -> None:
    """Serve the live dashboard and its JSON API (/api/status, /api/candidates) until stopped."""
    from screener.dashboard import create_app
    from screener.settings import load_settings
    from screener.store import open_store

    settings = load_settings()
    with open_store(settings) as store:
        app = create_app(store, settings, refresh_s=refresh)
        err.print(f"dashboard on http://{host}:{port}/ (Ctrl-C stops it)")
        app.run(host=host, port=port, debug=False)


@app.command()
def pause(space: Annotated[str, typer.Option(help="space name")]) -> None:
    """Pause a space's daemon before its next cycle (it keeps its lease and heartbeat)."""
    from screener.daemon import set_paused
    from screener.settings import load_settings
    from screener.store import open_store

    with open_store(load_settings(), create=False) as store:
        set_paused(store, space, True)
    out.print(f"{space}: paused (resume with `screener resume --space {space}`)")


@app.command()
def resume(space: Annotated[str, typer.Option(help="space name")]) -> None:
    """Resume a paused space's daemon."""
    from screener.daemon import set_paused
    from screener.settings import load_settings
    from screener.store import open_store

    with open_store(load_settings(), create=False) as store:
        set_paused(store, space, False)
    out.print(f"{space}: resumed")


@app.command()
def candidates(
    space: Annotated[str, typer.Option(help="space name, e.g. Cu-Pd")],
    adsorbate: Annotated[
        AdsorbateName | None, typer.Option(help=f"{KNOWN} (default: the space's first)")
    ] = None,
    calculator: Annotated[
        str | None, typer.Option("--calculator", "-c", help="profile (default: most results)")
    ] = None,
    target: TargetOption = None,
    window: WindowOption = None,
    limit: Annotated[int, typer.Option(min=0, help="at most this many (0 = all)")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="print a JSON list")] = False,
) -> None:
    """Surfaces ranked by the distance of their lowest-site dE to the target."""
    from screener.candidates import candidates as rank
    from screener.candidates import ranking_goal
    from screener.settings import load_settings
    from screener.store import open_store

    with open_store(load_settings(), readonly=True, create=False):
        goal = ranking_goal(space, adsorbate.value if adsorbate else None, calculator)
        rows = rank(
            space,
            goal.adsorbate,
            profile=goal.profile,
            target=target,
            window=window,
            limit=limit,
        )
    if as_json:
        _print_json(rows)
        return
    _candidate_table(rows, f"{goal.adsorbate} ({goal.profile})")


def _candidate_table(rows: list[dict], what: str = "") -> None:
    if not rows:
        out.print(f"no surfaces with a result or a prediction yet{' for ' + what if what else ''}")
        return
    first = rows[0]
    title = f"{first['adsorbate']} candidates, target {first['target']:+.2f} eV"
    table = Table(title=f"{title} ({first['profile']})")
    columns = ("#", "bulk", "hkl", "termination", "dE/eV", "std", "source", "in window")
    for column in columns:
        table.add_column(column)
    for rank_number, row in enumerate(rows, 1):
        table.add_row(
            str(rank_number),
            row["bulk_formula"] or "",
            "".join(map(str, row["miller"] or [])),
            row["termination"] or "",
            f"{row['energy']:+.3f}",
            f"{row['std']:.3f}",
            row["source"],
            "yes" if row["in_window"] else "",
        )
    out.print(table)


@app.command(
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    add_help_option=False,
)
def lpad(ctx: typer.Context) -> None:
    """FireWorks' own `lpad` on screener's database, e.g. `screener lpad get_fws -s FIZZLED`.

    Runs FireWorks' `lpad` with the LaunchPad file of the store in use
    (`<data_dir>/my_launchpad.yaml`, written first); `lpad -l` that file works as well.
    """
    import subprocess

    from screener.settings import load_settings
    from screener.store import open_store
    from screener.store.launchpad_file import write_launchpad_file

    with open_store(load_settings(), readonly=True) as store:
        path = write_launchpad_file(store)
    command = [str(Path(sys.executable).parent / "lpad"), "-l", str(path)]
    code = subprocess.call([*command, *(list(ctx.args) or ["-h"])])
    raise typer.Exit(code)


deploy_app = typer.Typer(help="Files for running screener's rockets on a cluster (FireWorks).")
app.add_typer(deploy_app, name="deploy")


@deploy_app.command("launchpad")
def deploy_launchpad(
    directory: Annotated[
        Path | None, typer.Option("--dir", help="where to write them (default: the data dir)")
    ] = None,
) -> None:
    """Write my_launchpad.yaml, my_fworker.yaml and my_qadapter.yaml for the store in use.

    The qadapter comes from the queue_* settings (Slurm); `qlaunch -l ... -w ... -q ... -r
    rapidfire` submits jobs with them, as the daemon's slurm launcher does.
    """
    from screener.jobs.queue import write_deploy_files
    from screener.settings import load_settings
    from screener.store import open_store

    settings = load_settings()
    with open_store(settings, readonly=True) as store:
        paths = write_deploy_files(store, directory or settings.data_dir)
    for path in paths:
        out.print(str(path), soft_wrap=True)


db_app = typer.Typer(help="The local database server of the data directory (SecantusDB).")
app.add_typer(db_app, name="db")


def _local_data_dir() -> Path:
    from screener.errors import InputError
    from screener.settings import load_settings

    settings = load_settings()
    if settings.mongo_uri:
        raise InputError(
            "SCREENER_MONGO_URI is set: the store is that MongoDB server, no local server is used"
        )
    return settings.data_dir


def _server_line(state) -> str:
    if state.running:
        return f"running: pid {state.pid}, {state.uri} (storage {state.storage}, log {state.log})"
    return f"not running (storage {state.storage}, log {state.log})"


@db_app.command("start")
def db_start() -> None:
    """Start the data directory's database server (nothing happens when it runs)."""
    from screener.settings import load_settings
    from screener.store import server

    data_dir = _local_data_dir()
    out.print(_server_line(server.start(data_dir, port=load_settings().db_port)))


@db_app.command("stop")
def db_stop() -> None:
    """Stop the data directory's database server."""
    from screener.store import server

    data_dir = _local_data_dir()
    before = server.status(data_dir)
    after = server.stop(data_dir)
    out.print(f"stopped pid {before.pid}" if before.running else _server_line(after))


@db_app.command("status")
def db_status(
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON object")] = False,
) -> None:
    """Whether the data directory's database server runs: pid, URI, storage, log."""
    from screener.store import server

    state = server.status(_local_data_dir())
    if as_json:
        _print_json(state.as_dict())
    else:
        out.print(_server_line(state))


@db_app.command("uri")
def db_uri() -> None:
    """The MongoDB URI of the store in use (the local server is started when needed)."""
    from screener.settings import load_settings
    from screener.store.connect import store_uri

    sys.stdout.write(store_uri(load_settings()) + "\n")


def _database_failure(exc: Exception) -> str:
    from screener.settings import load_settings
    from screener.store import server
    from screener.store.connect import safe_location

    reason = str(exc).split(", full error")[0]
    try:
        settings = load_settings()
    except ScreenerError:
        return f"the database failed: {reason}"
    if settings.mongo_uri:
        return f"the database at {safe_location(settings.mongo_uri)} failed: {reason}"
    log = server.ServerPaths(settings.data_dir).log.resolve()
    return f"the database server of {settings.data_dir} failed: {reason}; see {log}"


def _usage_line(exc: Any) -> str:
    """A usage error as one line, pointing at the command's help."""
    message = " ".join(str(exc.format_message()).split())
    ctx = getattr(exc, "ctx", None)
    path = getattr(ctx, "command_path", None)
    return f"{message} (see {path} --help)" if path else message


def main() -> None:
    """Console-script entry point: run the app, turning ScreenerError into one line + exit code."""
    try:
        app(standalone_mode=False)
    except ScreenerError as exc:
        sys.stderr.write(f"error: {' '.join(str(exc).split())}\n")
        sys.exit(exc.exit_code)
    except PyMongoError as exc:  # the server failed mid-command (damaged storage, a crash)
        sys.stderr.write(f"error: {' '.join(_database_failure(exc).split())}\n")
        sys.exit(1)
    except (typer.Exit, SystemExit) as exc:
        code = getattr(exc, "exit_code", getattr(exc, "code", 0))
        sys.exit(code or 0)
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)
    except Exception as exc:  # usage errors from typer's click (vendored or not)
        if hasattr(exc, "show") and isinstance(getattr(exc, "exit_code", None), int):
            if type(exc).__name__ == "NoArgsIsHelpError" or not hasattr(exc, "format_message"):
                exc.show()  # the help text: a command group called without a command
            else:
                sys.stderr.write(f"error: {_usage_line(exc)}\n")
            sys.exit(exc.exit_code)
        if type(exc).__name__ == "Abort":
            sys.exit(1)
        raise


if __name__ == "__main__":
    main()
