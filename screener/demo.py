"""``screener demo``: the whole loop on a laptop, with EMT as a toy oracle, and its HTML report.

Seeds a small EMT-covered space, runs the daemon for a few cycles with the ``emt`` profile and
FireWorks rockets in the daemon's process, then prints candidate tables and the prospective
learning curve and writes ``<data_dir>/report.html`` (:mod:`screener.report`, drawn from the
:class:`~screener.report.ReportData` that :func:`report_data` reads through
:mod:`screener.views`).
"""

from __future__ import annotations

import datetime as dt

from screener import views
from screener.queries import get_space
from screener.report import AdsorbateReport, ReportData

DEMO_ELEMENTS = "Ag,Au,Cu,Pd,Pt"
TOP_CANDIDATES = 10  # rows per adsorbate in the report's candidate tables
CYCLES_SHOWN = 200  # the report's cycle table holds at most this many (the newest)
MAP_X, MAP_Y = "CO", "H"  # the adsorbates of the descriptor map

NOTICE = (
    "EMT is a toy potential (effective-medium theory, ASE's built-in for Al, Cu, Ag, Au, Ni, Pd, "
    "Pt with H, C, N, O): it runs the whole loop in minutes, but its adsorption energies are not "
    "DFT and say nothing about real catalysts. The same loop with GPAW (RPBE, plane waves) is the "
    "production path; the numbers in this report exercise the machinery only."
)


def how_to_gpaw(space: str, elements: str) -> str:
    """The commands that run the demo's loop with DFT instead of EMT."""
    return (
        f"screener seed --elements {elements}\n"
        f"screener run --space {space} --calculator gpaw      # the daemon (SIGTERM stops it)\n"
        f"screener candidates --space {space} --adsorbate CO --calculator gpaw\n"
        "# on a cluster: SCREENER_MONGO_URI=mongodb://... and --launcher slurm (docs/cluster.md)"
    )


def _adsorbate_report(space: str, adsorbate: str, profile: str) -> AdsorbateReport:
    # the target and window come from the settings (candidate_rows resolves them)
    rows, target, window, _ = views.candidate_rows(space, adsorbate, profile=profile)
    found = views.results(space, adsorbate, profile=profile)
    points = views.prospective(space, adsorbate, profile=profile, found=found)
    return AdsorbateReport(
        adsorbate=adsorbate,
        target=target,
        window=window,
        candidates=list(rows[:TOP_CANDIDATES]),
        surfaces=len(rows),
        calculated_surfaces=sum(r.source == "calculated" for r in rows),
        prospective=points,
        curve=views.learning_curve(points, found),
        calibration=views.calibration(points),
        hits=views.hits_curve(found, target, window),
    )


def report_data(space: str, profile: str) -> ReportData:
    """Everything :func:`screener.report.write_report` draws, from the store (must be open).

    Parameters
    ----------
    space : str
        The element space.
    profile : str
        The calculator profile whose results are shown.

    Returns
    -------
    ReportData
        Candidates, prospective predictions, learning curve, hits and calibration per adsorbate
        of the space, the CO/H map (None without both) and the cycles, oldest first.
    """
    doc = get_space(space)
    has_map = MAP_X in doc.adsorbates and MAP_Y in doc.adsorbates
    return ReportData(
        title=f"screener: {space} ({profile})",
        space=space,
        profile=profile,
        generated=dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        notice=NOTICE if profile == "emt" else "",
        how_to_gpaw=how_to_gpaw(space, ",".join(doc.elements)),
        adsorbates=[_adsorbate_report(space, a, profile) for a in doc.adsorbates],
        energy_map=views.energy_map(space, MAP_X, MAP_Y, profile=profile) if has_map else None,
        cycles=list(reversed(views.recent_cycles(space, CYCLES_SHOWN, profile=profile))),
    )


def parity_mae(data: ReportData) -> dict[str, float | None]:
    """MAE (eV) of the predictions made before each calculation, per adsorbate (None: none)."""
    return {a.adsorbate: a.mae for a in data.adsorbates}


def hits_found(data: ReportData) -> dict[str, int]:
    """Prospective results inside the target window, per adsorbate, by the last cycle."""
    return {a.adsorbate: a.hits[-1].hits if a.hits else 0 for a in data.adsorbates}
