"""The ``screener`` command line: thin; parses, calls one function, prints.

Errors the user can act on print one line, ``error: ...``, on stderr and exit nonzero (2 for bad
input, with nothing written).
"""

from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from screener.errors import ScreenerError

app = typer.Typer(
    help="Closed-loop active-learning screening of CO and H adsorption sites.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
out = Console(highlight=False)
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


def _seed(plan, settings) -> tuple[Any, float]:
    """Run a validated seed plan with a progress bar; returns (report, seconds)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    from screener.enumerate.seed import seed as run_seed
    from screener.store import open_store

    started = time.perf_counter()
    with open_store(settings) as store:
        with Progress(
            "[progress.description]{task.description}",
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=err,
            transient=True,
            disable=not err.is_terminal,
        ) as progress:
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
    adsorbates: Annotated[str, typer.Option("--adsorbates", "-a", help="CO, H or both")] = "CO,H",
    bulks: Annotated[
        list[Path] | None,
        typer.Option("--bulks", help="bulk structure files (CIF, POSCAR, extxyz); repeatable"),
    ] = None,
    prototypes: Annotated[
        bool, typer.Option(help="include unary and binary prototype bulks")
    ] = True,
    name: Annotated[str | None, typer.Option(help="space name (default: Cu-Pd style)")] = None,
    max_miller: Annotated[int | None, typer.Option(help="largest Miller index, 1-4")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the report as JSON")] = False,
) -> None:
    """Enumerate bulks -> slabs -> symmetry-unique sites of a space and store what is new."""
    from screener.enumerate.seed import plan_seed
    from screener.settings import load_settings

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
    elements: Annotated[str, typer.Option("--elements", "-e", help="the demo space")] = "Cu,Pd",
) -> None:
    """Seed a small space into the configured store and show what was stored.

    The closed loop (surrogate, DFT workflows, daemon) is not built yet; this shows its first
    stage, enumeration, end to end.
    """
    from screener.enumerate.seed import plan_seed
    from screener.settings import load_settings

    settings = load_settings()
    plan = plan_seed(elements, "CO,H", settings=settings)
    out.print(
        f"[bold]screener demo[/bold]: enumerating the {plan.space} space "
        f"({len(plan.bulks)} bulks: unaries and B2, L1_0, L1_2 prototypes; Miller index <= "
        f"{plan.max_miller}) into {settings.mongo_uri and 'MongoDB' or settings.data_dir}"
    )
    report, elapsed = _seed(plan, settings)
    _print_seed_report(report, len(plan.bulks), elapsed)
    _fail_on_enumeration_errors(report)
    status(as_json=False)
    out.print("the first CO sites stored:")
    sites(space=plan.space, adsorbate="CO", site_type=None, limit=8, as_json=False)
    out.print(
        "next: `screener sites --space "
        f"{plan.space} --json` lists them all. Not built yet: the surrogate, the DFT workflows "
        "(GPAW; EMT as a toy oracle) and the closed loop."
    )


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


@app.command()
def sites(
    space: Annotated[str | None, typer.Option(help="space name, e.g. Cu-Pd")] = None,
    adsorbate: Annotated[str | None, typer.Option(help="CO or H")] = None,
    site_type: Annotated[
        str | None, typer.Option("--type", help="ontop, bridge, fcc, hcp or 4-fold")
    ] = None,
    limit: Annotated[int, typer.Option(help="at most this many (0 = all)")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="print a JSON list")] = False,
) -> None:
    """List stored adsorption sites."""
    from screener.errors import InputError
    from screener.queries import list_sites
    from screener.settings import load_settings
    from screener.store import open_store
    from screener.store.documents import SITE_TYPES
    from workflows.adsorbates import ADSORBATES

    if adsorbate is not None and adsorbate not in ADSORBATES:
        raise InputError(
            f"unsupported adsorbate '{adsorbate}' (supported: {', '.join(ADSORBATES)})"
        )
    if site_type is not None and site_type not in SITE_TYPES:
        raise InputError(f"unknown site type '{site_type}' (one of: {', '.join(SITE_TYPES)})")
    with open_store(load_settings(), readonly=True):
        rows = list_sites(space, adsorbate, site_type, limit)
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

    with open_store(load_settings()) as store:
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
    max_rockets: Annotated[int | None, typer.Option("--max", help="at most this many")] = None,
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
    adsorbate: Annotated[str | None, typer.Option(help="CO or H")] = None,
    calculator: Annotated[str | None, typer.Option("--calculator", "-c", help="profile")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print a JSON list")] = False,
) -> None:
    """Adsorption energies (eV) of submitted sites, with their flags and state."""
    from screener.queries import list_results
    from screener.settings import load_settings
    from screener.store import open_store

    with open_store(load_settings(), readonly=True):
        rows = list_results(space, adsorbate, calculator)
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


@app.command(
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    add_help_option=False,
)
def lpad(ctx: typer.Context) -> None:
    """FireWorks' own `lpad` on screener's database, e.g. `screener lpad get_fws -s FIZZLED`.

    With the embedded store this is the way to use lpad: it runs inside screener, holding the
    store's lock, and commits what lpad changed (rerun_fws, defuse_fws, ...).
    """
    from fireworks.scripts import lpad_run

    from screener.settings import load_settings
    from screener.store import open_store

    with open_store(load_settings()) as store:
        launchpad = store.launchpad()
        lpad_run.get_lp = lambda args: launchpad
        try:
            code = lpad_run.lpad(list(ctx.args) or ["-h"])
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 0
        store.commit()
    raise typer.Exit(code or 0)


def main() -> None:
    """Console-script entry point: run the app, turning ScreenerError into one line + exit code."""
    try:
        app(standalone_mode=False)
    except ScreenerError as exc:
        sys.stderr.write(f"error: {' '.join(str(exc).split())}\n")
        sys.exit(exc.exit_code)
    except (typer.Exit, SystemExit) as exc:
        code = getattr(exc, "exit_code", getattr(exc, "code", 0))
        sys.exit(code or 0)
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)
    except Exception as exc:  # usage errors from typer's click (vendored or not)
        if hasattr(exc, "show") and isinstance(getattr(exc, "exit_code", None), int):
            exc.show()
            sys.exit(exc.exit_code)
        if type(exc).__name__ == "Abort":
            sys.exit(1)
        raise


if __name__ == "__main__":
    main()
