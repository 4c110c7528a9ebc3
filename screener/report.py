"""A self-contained HTML report of a screening run, drawn with :mod:`screener.figures`.

:func:`write_report` renders one HTML file from a :class:`ReportData` (built from the store by
:func:`screener.demo.report_data`): a header with the run's notice and how to run it with GPAW,
candidate tables per adsorbate, the surfaces on the dE_CO vs dE_H map, parity of the predictions
made when each site was chosen against its calculation, the prospective learning curve with the
hits found, calibration, and a table of the loop's cycles.  The figures are the dashboard's
(plotly); plotly.js is inlined once in the head and each figure's JSON sits in its own
``<script type="application/json">``, so the file loads nothing from anywhere: no CDN, no MathJax,
no other file.  Every string from the store is escaped (``html.escape`` in the page, ``\\u003c``
and kin in the figures' JSON).

:func:`report_summary` gives a few plain-text lines of the same data, for logs.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from html import escape
from pathlib import Path

import plotly.graph_objects as go

from screener import figures
from screener.files import write_text_atomic
from screener.views import (
    CalibrationPoint,
    CandidateRow,
    CurvePoint,
    CycleRow,
    EnergyMap,
    HitPoint,
    Prospective,
)

__all__ = ["AdsorbateReport", "ReportData", "render_report", "report_summary", "write_report"]

NO_DATA = "no data yet"
PLOTLY_CONFIG = {
    "responsive": True,
    "displaylogo": False,  # the logo links to plotly.com
    "showSendToCloud": False,
    "showLink": False,
    "typesetMath": False,  # never look for MathJax
}

CSS = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 2em auto;
       max-width: 1200px; padding: 0 1em; color: #222; line-height: 1.4; }
h1 { margin-bottom: 0.2em; }
.meta { color: #555; margin-top: 0; }
.meta span { margin-right: 1.5em; }
.notice { background: #fff3b0; border: 1px solid #e0c040; border-left: 6px solid #e0a800;
          padding: 0.8em 1em; margin: 1em 0; white-space: pre-wrap; }
pre { background: #f4f4f4; border: 1px solid #ddd; padding: 0.8em; overflow-x: auto; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; }
th { background: #eee; }
td.num { text-align: right; font-family: monospace; }
td.name { font-family: monospace; }
.nodata { color: #888; font-style: italic; }
.caption { color: #555; font-size: 0.9em; }
.ovl { text-decoration: overline; }
.panels { display: grid; grid-template-columns: repeat(auto-fit, minmax(460px, 1fr));
          gap: 1em; }
.figure { height: 440px; }
.map { height: 560px; }
"""

RENDER_JS = """
(function () {
  var config = %s;
  document.querySelectorAll("script.figure-data").forEach(function (node) {
    var spec = JSON.parse(node.textContent);
    Plotly.newPlot(node.getAttribute("data-for"), spec.data, spec.layout, config);
  });
})();
"""


# -- the declared shape --------------------------------------------------------------------------
@dataclass(frozen=True)
class AdsorbateReport:
    """What the report shows of one adsorbate.

    Attributes
    ----------
    adsorbate : str
        Its name (``"CO"``).
    target, window : float
        The target dE and the half-width of its window (eV).
    candidates : list of CandidateRow
        The surfaces nearest the target, nearest first (the top few).
    surfaces : int
        Surfaces with a dE (calculated or predicted).
    calculated_surfaces : int
        Of them, those whose dE is calculated.
    prospective : list of Prospective
        Finished results with the prediction stored when the loop chose the site.
    curve : list of CurvePoint
        Prospective MAE and 90% coverage per cycle (:func:`screener.views.learning_curve`).
    calibration : list of CalibrationPoint
        Observed against nominal coverage (:func:`screener.views.calibration`).
    hits : list of HitPoint
        Prospective results in the window, per cycle, cumulative
        (:func:`screener.views.hits_curve`).
    """

    adsorbate: str
    target: float
    window: float
    candidates: list[CandidateRow] = field(default_factory=list)
    surfaces: int = 0
    calculated_surfaces: int = 0
    prospective: list[Prospective] = field(default_factory=list)
    curve: list[CurvePoint] = field(default_factory=list)
    calibration: list[CalibrationPoint] = field(default_factory=list)
    hits: list[HitPoint] = field(default_factory=list)

    @property
    def mae(self) -> float | None:
        """MAE of the prospective predictions (eV), None without any."""
        if not self.prospective:
            return None
        return sum(abs(p.error) for p in self.prospective) / len(self.prospective)


@dataclass(frozen=True)
class ReportData:
    """Everything :func:`write_report` draws.

    Attributes
    ----------
    title, space, profile, generated : str
        The page title, the element space, the calculator profile and when it was made.
    notice : str
        A warning shown at the top ("" for none): the EMT notice of the demo.
    how_to_gpaw : str
        Commands that run the same loop with DFT ("" for none).
    adsorbates : list of AdsorbateReport
        One per adsorbate of the space, in the space's order.
    energy_map : EnergyMap or None
        dE_CO against dE_H per surface; None when the space lacks one of them.
    cycles : list of CycleRow
        The loop's cycles, oldest first.
    """

    title: str
    space: str
    profile: str
    generated: str
    notice: str = ""
    how_to_gpaw: str = ""
    adsorbates: list[AdsorbateReport] = field(default_factory=list)
    energy_map: EnergyMap | None = None
    cycles: list[CycleRow] = field(default_factory=list)


# -- small helpers -------------------------------------------------------------------------------
def _miller_html(miller: Sequence[int]) -> str:
    """Miller indices as HTML: ``(1, 1, 1)`` -> ``111``, negatives with an overline."""
    parts = [f'<span class="ovl">{abs(i)}</span>' if i < 0 else str(i) for i in miller]
    separator = "" if all(abs(i) < 10 for i in miller) else " "
    return separator.join(parts)


def _miller_text(miller: Sequence[int]) -> str:
    separator = "" if all(0 <= i < 10 for i in miller) else " "
    return separator.join(str(i) for i in miller)


def _no_data(detail: str = "") -> str:
    extra = f": {escape(detail)}" if detail else ""
    return f'<p class="nodata">{NO_DATA}{extra}</p>'


def _calc(profile: str) -> str:
    """What the calculations were: the profile's name (never "DFT" for an EMT run)."""
    return f"DFT ({profile})" if profile.startswith("gpaw") else profile.upper()


def _script_json(value: str) -> str:
    """JSON that is safe inside a ``<script>`` element: no ``<``, ``>`` or ``&`` left."""
    return value.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


class _Figures:
    """Numbers the figures of one page and renders each as a div and its JSON."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, fig: go.Figure, css: str = "figure") -> str:
        self.count += 1
        div = f"fig-{self.count}"
        spec = _script_json(fig.to_json(validate=False))
        return (
            f'<div class="{css}" id="{div}"></div>\n'
            f'<script type="application/json" class="figure-data" data-for="{div}">'
            f"{spec}</script>"
        )


# -- sections ------------------------------------------------------------------------------------
def _header(data: ReportData) -> str:
    meta = [("space", data.space), ("profile", data.profile), ("generated", data.generated)]
    spans = "".join(f"<span><b>{k}:</b> {escape(v)}</span>" for k, v in meta)
    parts = [f"<h1>{escape(data.title)}</h1>", f'<p class="meta">{spans}</p>']
    if data.notice:
        parts.append(f'<div class="notice">{escape(data.notice)}</div>')
    if data.how_to_gpaw:
        parts.append("<h3>Running with GPAW</h3>")
        parts.append(f"<pre>{escape(data.how_to_gpaw)}</pre>")
    targets = [
        f"dE<sub>{escape(a.adsorbate)}</sub> = {a.target:+.2f} ± {a.window:.2f} eV"
        for a in data.adsorbates
    ]
    if targets:
        parts.append(f"<p><b>Targets:</b> {'; '.join(targets)}</p>")
    return '<section id="header">\n' + "\n".join(parts) + "\n</section>"


def _candidate_table(rows: Sequence[CandidateRow]) -> str:
    header = (
        "<tr><th>rank</th><th>surface</th><th>bulk</th><th>Miller</th><th>termination</th>"
        "<th>dE / eV</th><th>± std</th><th>source</th><th>in window</th></tr>"
    )
    body = []
    for rank, row in enumerate(rows, start=1):
        body.append(
            "<tr>"
            f'<td class="num">{rank}</td>'
            f'<td class="name">{escape(row.surface)}</td>'
            f"<td>{escape(row.bulk_formula)}</td>"
            f"<td>{_miller_html(row.miller)}</td>"
            f"<td>{escape(row.termination)}</td>"
            f'<td class="num">{row.energy:+.3f}</td>'
            f'<td class="num">±{row.std:.3f}</td>'
            f"<td>{escape(row.source)}</td>"
            f"<td>{'yes' if row.in_window else ''}</td>"
            "</tr>"
        )
    return f"<table>{header}{''.join(body)}</table>"


def _candidates_section(data: ReportData) -> str:
    parts = ['<section id="candidates">', "<h2>Candidates</h2>"]
    for a in data.adsorbates:
        parts.append(f"<h3>{escape(a.adsorbate)} (target {a.target:+.2f} ± {a.window:.2f} eV)</h3>")
        if a.candidates:
            parts.append(_candidate_table(a.candidates))
            parts.append(
                f'<p class="caption">The {len(a.candidates)} of {a.surfaces} surfaces nearest '
                f"the target (each by its lowest site); {a.calculated_surfaces} have a "
                f"calculated dE, the others the surrogate's prediction.</p>"
            )
        else:
            parts.append(_no_data(f"no {a.adsorbate} surface has a result or a prediction"))
    if not data.adsorbates:
        parts.append(_no_data())
    parts.append("</section>")
    return "\n".join(parts)


def _map_section(data: ReportData, figure: _Figures) -> str:
    emap = data.energy_map
    head = '<section id="map">\n'
    if emap is None:
        return (
            head + "<h2>Surfaces on the dE map</h2>" + _no_data("no CO and H sites") + "</section>"
        )
    x, y = emap.x, emap.y
    head += f"<h2>Surfaces on the dE<sub>{escape(x.adsorbate)}</sub> vs "
    head += f"dE<sub>{escape(y.adsorbate)}</sub> map</h2>\n"
    if not emap.points:
        detail = f"no surface has both {x.adsorbate} and {y.adsorbate} energies"
        return head + _no_data(detail) + "\n</section>"
    known = sum(p.calculated for p in emap.points)
    both = sum(
        abs(p.x - x.target) <= x.window and abs(p.y - y.target) <= y.window for p in emap.points
    )
    caption = (
        f"{len(emap.points)} surfaces with both energies (lowest site each); {known} calculated "
        f"({_calc(data.profile)}) for both, the others use the surrogate for at least one. "
        f"{both} lie in both target windows (the shaded bands)."
    )
    return (
        head
        + figure(figures.map_figure(emap), "figure map")
        + f'\n<p class="caption">{escape(caption)}</p>\n</section>'
    )


def _parity_section(data: ReportData, figure: _Figures) -> str:
    calc = escape(_calc(data.profile))
    parts = [
        '<section id="parity">',
        f"<h2>Parity: the prediction made when the site was chosen vs {calc}</h2>",
        '<div class="panels">',
    ]
    for a in data.adsorbates:
        if a.prospective:
            parts.append(f"<div>{figure(figures.parity_figure(a.prospective, a.adsorbate))}</div>")
        else:
            detail = f"no {a.adsorbate} calculation with a stored prediction"
            parts.append(f"<div><h3>{escape(a.adsorbate)}</h3>{_no_data(detail)}</div>")
    parts.append("</div>")
    maes = [
        f"{a.adsorbate} {a.mae:.3f} eV over {len(a.prospective)}"
        for a in data.adsorbates
        if a.mae is not None
    ]
    if maes:
        caption = (
            "Each point is a finished calculation against the surrogate's prediction stored on "
            "its job when the loop chose the site (error bars: that prediction's std). "
            f"Prospective MAE: {'; '.join(maes)}."
        )
        parts.append(f'<p class="caption">{escape(caption)}</p>')
    parts.append("</section>")
    return "\n".join(parts)


def _curve_section(data: ReportData, figure: _Figures) -> str:
    parts = [
        '<section id="learning-curve">',
        "<h2>Learning curve: prospective accuracy and hits</h2>",
        '<div class="panels">',
    ]
    for a in data.adsorbates:
        if a.curve:
            parts.append(
                f"<div>{figure(figures.learning_curve_figure(a.curve, a.adsorbate))}</div>"
            )
        else:
            detail = f"no {a.adsorbate} calculation with a stored prediction"
            parts.append(f"<div><h3>{escape(a.adsorbate)}</h3>{_no_data(detail)}</div>")
    hits = {a.adsorbate: a.hits for a in data.adsorbates if a.hits}
    if hits:
        parts.append(f"<div>{figure(figures.hits_figure(hits))}</div>")
    parts.append("</div>")
    if any(a.curve for a in data.adsorbates):
        caption = (
            "Each point is one loop cycle: the MAE of the predictions stored when its sites were "
            "chosen, against their calculations, and the share of those calculations inside the "
            "predicted 90% interval (mean ± 1.645 std; a calibrated interval covers about 0.9). "
            "The x axis counts every calculation of the adsorbate done by the end of the cycle, "
            "the random picks of cycles without a model included (they predict nothing, so they "
            "have no point of their own); hits are the calculations whose dE lies in the target "
            "window."
        )
        parts.append(f'<p class="caption">{escape(caption)}</p>')
    parts.append("</section>")
    return "\n".join(parts)


def _calibration_section(data: ReportData, figure: _Figures) -> str:
    parts = ['<section id="calibration">', "<h2>Calibration</h2>", '<div class="panels">']
    for a in data.adsorbates:
        if a.calibration:
            fig = figures.calibration_figure(a.calibration, a.adsorbate)
            parts.append(f"<div>{figure(fig)}</div>")
        else:
            detail = f"no {a.adsorbate} prediction with a std"
            parts.append(f"<div><h3>{escape(a.adsorbate)}</h3>{_no_data(detail)}</div>")
    parts.append("</div>")
    if any(a.calibration for a in data.adsorbates):
        caption = (
            "How often a calculated dE fell inside the central normal interval of its "
            "prediction (mean ± z std), against the interval's nominal coverage: on the diagonal "
            "is calibrated, below it overconfident."
        )
        parts.append(f'<p class="caption">{escape(caption)}</p>')
    parts.append("</section>")
    return "\n".join(parts)


def _cycles_section(data: ReportData) -> str:
    head = '<section id="cycles">\n<h2>Cycles</h2>\n'
    if not data.cycles:
        return head + _no_data("the loop has not run") + "\n</section>"
    steps: list[str] = []
    for row in data.cycles:
        steps += [k for k in row.timings if k not in steps]
    header = "<tr><th>cycle</th><th>started (UTC)</th><th>seconds</th><th>submitted</th>"
    header += "".join(f"<th>{escape(s)} / s</th>" for s in steps) + "</tr>"
    body = []
    for row in data.cycles:
        started = row.started.strftime("%Y-%m-%d %H:%M:%S") if row.started else ""
        seconds = "" if row.seconds is None else f"{row.seconds:.1f}"
        cells = [
            f'<td class="num">{row.number}</td>',
            f"<td>{escape(started)}</td>",
            f'<td class="num">{seconds}</td>',
            f'<td class="num">{row.submitted}</td>',
        ]
        for step in steps:
            value = row.timings.get(step)
            cells.append(f'<td class="num">{"" if value is None else f"{value:.1f}"}</td>')
        body.append(f"<tr>{''.join(cells)}</tr>")
    return f"{head}<table>{header}{''.join(body)}</table>\n</section>"


# -- public API ----------------------------------------------------------------------------------
def render_report(data: ReportData) -> str:
    """The report as one HTML string (what :func:`write_report` writes).

    Parameters
    ----------
    data : ReportData
        What to draw.

    Returns
    -------
    str
        A complete HTML document starting with ``<!DOCTYPE html>``; plotly.js is inlined once
        when there is a figure to draw (a report without data has none).
    """
    from plotly.offline import get_plotlyjs

    figure = _Figures()
    sections = [
        _header(data),
        _candidates_section(data),
        _map_section(data, figure),
        _parity_section(data, figure),
        _curve_section(data, figure),
        _calibration_section(data, figure),
        _cycles_section(data),
    ]
    scripts = ""
    if figure.count:  # plotly.js once, in the head, only when there is something to draw
        scripts = (
            '<script>window.PlotlyConfig = {MathJaxConfig: "local"};</script>\n'
            f"<script>{get_plotlyjs()}</script>\n"
        )
    render = RENDER_JS % json.dumps(PLOTLY_CONFIG) if figure.count else ""
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{escape(data.title)}</title>\n<style>{CSS}</style>\n"
        + scripts
        + "</head>\n<body>\n"
        + "\n".join(sections)
        + (f"\n<script>{render}</script>" if render else "")
        + "\n</body>\n</html>\n"
    )


def write_report(data: ReportData, path: str | Path) -> Path:
    """Write the HTML report of a screening run to ``path``, atomically.

    Parameters
    ----------
    data : ReportData
        What to draw; empty lists give sections that say "no data yet".
    path : str or Path
        Where to write; parent folders are created.  The file is written to a temporary file
        in the same folder and moved into place, so readers never see a partial report.

    Returns
    -------
    Path
        The path written.
    """
    return write_text_atomic(Path(path), render_report(data), mode=0o644)


def report_summary(data: ReportData) -> str:
    """A few plain-text lines about the report data, for logs.

    Parameters
    ----------
    data : ReportData
        What the report draws.

    Returns
    -------
    str
        Lines without a trailing newline: the run, surface counts, the top candidate and the
        prospective MAE per adsorbate, and the loop's progress.
    """
    lines = [f"{data.title} (space {data.space}, profile {data.profile})"]
    counts = [
        f"{a.adsorbate} {a.surfaces} ({a.calculated_surfaces} calculated)" for a in data.adsorbates
    ]
    on_map = ""
    if data.energy_map is not None:
        known = sum(p.calculated for p in data.energy_map.points)
        on_map = (
            f"; with both {data.energy_map.x.adsorbate} and {data.energy_map.y.adsorbate}: "
            f"{len(data.energy_map.points)} ({known} calculated)"
        )
    lines.append(f"surfaces with a dE: {', '.join(counts) or 'none'}{on_map}")
    for a in data.adsorbates:
        if not a.candidates:
            lines.append(f"{a.adsorbate}: no candidates yet")
            continue
        top = a.candidates[0]
        mae = "" if a.mae is None else f"; prospective MAE {a.mae:.3f} eV over {len(a.prospective)}"
        lines.append(
            f"{a.adsorbate}: top {top.surface} ({top.bulk_formula} {_miller_text(top.miller)}) "
            f"dE {top.energy:+.3f} ± {top.std:.3f} eV [{top.source}]{mae}"
        )
    if data.cycles:
        done = sum(len(a.prospective) for a in data.adsorbates)
        lines.append(f"cycles: {len(data.cycles)}; {done} calculations with a stored prediction")
    return "\n".join(lines)
