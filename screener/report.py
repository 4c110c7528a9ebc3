"""A self-contained HTML report of a screening run.

:func:`write_report` renders one HTML file from a plain ``data`` dict (see its docstring): a
header with the run's notice, the surfaces on the dE_CO vs dE_H map, candidate tables, parity
plots of the predictions made before each calculation, the learning curve and a table of the
loop's cycles.  Plots are matplotlib PNGs embedded as base64 ``data:`` URIs, so the file needs
no network, no JavaScript and no other files.  Every string taken from ``data`` is escaped.

:func:`report_summary` gives a few plain-text lines of the same data, for logs.
"""

from __future__ import annotations

import base64
import io
import math
import os
import tempfile
from collections.abc import Iterable, Sequence
from html import escape
from pathlib import Path
from typing import Any

__all__ = ["write_report", "report_summary"]

NO_DATA = "no data yet"
MAP_X, MAP_Y = "CO", "H"  # the two adsorbates of the descriptor map
COVERAGE_BAND = (0.85, 0.95)  # a well-calibrated 90 % interval covers about this often
DPI = 100
COLORS = {"CO": "tab:blue", "H": "tab:orange"}
OTHER_COLORS = ("tab:green", "tab:red", "tab:purple", "tab:brown")

CSS = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 2em auto;
       max-width: 1000px; padding: 0 1em; color: #222; line-height: 1.4; }
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
img { max-width: 100%; }
.ovl { text-decoration: overline; }
"""


# -- small helpers -------------------------------------------------------------------------------
def _num(value: Any) -> float | None:
    """``value`` as a finite float, or None (None, NaN, inf, non-numbers)."""
    if value is None or isinstance(value, bool):
        return None
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) else None


def _fmt(value: Any, spec: str, missing: str = "–") -> str:
    number = _num(value)
    return missing if number is None else format(number, spec)


def _text(value: Any) -> str:
    """Any value as escaped HTML text ("" for None)."""
    return "" if value is None else escape(str(value))


def _miller_html(miller: Any) -> str:
    """Miller indices as HTML: ``[1, 1, 1]`` -> ``111``, negatives with an overline."""
    if miller is None:
        return ""
    if isinstance(miller, str):
        return escape(miller)
    try:
        indices = [int(i) for i in miller]
    except (TypeError, ValueError):
        return escape(str(miller))
    parts = [f'<span class="ovl">{abs(i)}</span>' if i < 0 else str(i) for i in indices]
    separator = "" if all(abs(i) < 10 for i in indices) else " "
    return separator.join(parts)


def _miller_text(miller: Any) -> str:
    if miller is None:
        return ""
    if isinstance(miller, str):
        return miller
    try:
        indices = [int(i) for i in miller]
    except (TypeError, ValueError):
        return str(miller)
    separator = "" if all(0 <= i < 10 for i in indices) else " "
    return separator.join(str(i) for i in indices)


def _mpl(label: Any) -> str:
    """A string safe for a matplotlib label (no mathtext from user data)."""
    return str(label).replace("$", r"\$")


def _color(adsorbate: str, index: int) -> str:
    return COLORS.get(adsorbate, OTHER_COLORS[index % len(OTHER_COLORS)])


def _adsorbates(data: dict) -> list[str]:
    """Adsorbates in a stable order: the targets' order, then any others seen in the data."""
    names: list[str] = []

    def add(keys: Iterable[Any]) -> None:
        for key in keys:
            if isinstance(key, str) and key not in names:
                names.append(key)

    add((data.get("targets") or {}).keys())
    add((data.get("candidates") or {}).keys())
    add((data.get("parity") or {}).keys())
    for row in data.get("curve") or []:
        for field in ("mae", "coverage90", "hits"):
            add((row.get(field) or {}).keys())
    return names


def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=DPI)
    FigureCanvasAgg(fig)
    return fig


def _png_img(fig, alt: str) -> str:
    """Render ``fig`` as an inline ``<img>`` with a base64 PNG."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI)
    encoded = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f'<img src="data:image/png;base64,{encoded}" alt="{escape(alt)}">'


def _no_data(detail: str = "") -> str:
    extra = f" ({escape(detail)})" if detail else ""
    return f'<p class="nodata">{NO_DATA}{extra}</p>'


def _target(data: dict, adsorbate: str) -> tuple[float, float] | None:
    spec = (data.get("targets") or {}).get(adsorbate) or {}
    target, window = _num(spec.get("target")), _num(spec.get("window"))
    if target is None:
        return None
    return target, window or 0.0


def _in_window(energy: float | None, target: tuple[float, float] | None) -> bool:
    return energy is not None and target is not None and abs(energy - target[0]) <= target[1]


# -- sections ------------------------------------------------------------------------------------
def _header(data: dict) -> str:
    meta = [
        ("space", data.get("space")),
        ("profile", data.get("profile")),
        ("generated", data.get("generated")),
    ]
    spans = "".join(f"<span><b>{k}:</b> {_text(v)}</span>" for k, v in meta)
    parts = [
        f"<h1>{_text(data.get('title') or 'screener report')}</h1>",
        f'<p class="meta">{spans}</p>',
    ]
    if data.get("notice"):
        parts.append(f'<div class="notice">{_text(data["notice"])}</div>')
    if data.get("how_to_gpaw"):
        parts.append("<h3>Running with GPAW</h3>")
        parts.append(f"<pre>{_text(data['how_to_gpaw'])}</pre>")
    targets = []
    for adsorbate in _adsorbates(data):
        target = _target(data, adsorbate)
        if target is not None:
            targets.append(
                f"dE<sub>{_text(adsorbate)}</sub> = {target[0]:+.2f} ± {target[1]:.2f} eV"
            )
    if targets:
        parts.append(f"<p><b>Targets:</b> {'; '.join(targets)}</p>")
    return "\n".join(parts)


def _calc(data: dict) -> str:
    """What the calculations were: the profile's name (never "DFT" for an EMT run)."""
    profile = str(data.get("profile") or "calculation")
    return f"DFT ({profile})" if profile.startswith("gpaw") else profile.upper()


def _map_points(surfaces: Sequence[dict]) -> list[tuple[float, float, bool]]:
    points = []
    for row in surfaces:
        x_entry, y_entry = row.get(MAP_X), row.get(MAP_Y)
        if not x_entry or not y_entry:
            continue
        x, y = _num(x_entry.get("energy")), _num(y_entry.get("energy"))
        if x is None or y is None:
            continue
        calculated = x_entry.get("source") == y_entry.get("source") == "calculated"
        points.append((x, y, calculated))
    return points


def _map_section(data: dict) -> str:
    surfaces = data.get("surfaces") or []
    title = f"Surfaces on the dE<sub>{MAP_X}</sub> vs dE<sub>{MAP_Y}</sub> map"
    head = f"<h2>{title}</h2>"
    points = _map_points(surfaces)
    if not points:
        detail = f"{len(surfaces)} surfaces, none with both values" if surfaces else ""
        return head + _no_data(detail)

    target_x, target_y = _target(data, MAP_X), _target(data, MAP_Y)
    fig = _figure(5.5, 4.5)
    ax = fig.add_subplot()
    if target_x is not None:
        ax.axvspan(
            target_x[0] - target_x[1],
            target_x[0] + target_x[1],
            color=_color(MAP_X, 0),
            alpha=0.15,
            lw=0,
            label=f"{MAP_X} target ± window",
        )
    if target_y is not None:
        ax.axhspan(
            target_y[0] - target_y[1],
            target_y[0] + target_y[1],
            color=_color(MAP_Y, 1),
            alpha=0.15,
            lw=0,
            label=f"{MAP_Y} target ± window",
        )
    predicted = [(x, y) for x, y, calculated in points if not calculated]
    known = [(x, y) for x, y, calculated in points if calculated]
    if predicted:
        xs, ys = zip(*predicted, strict=True)
        ax.scatter(
            xs,
            ys,
            s=18,
            facecolors="none",
            edgecolors="0.35",
            linewidths=0.8,
            label=f"surrogate for CO or H ({len(predicted)})",
        )
    if known:
        xs, ys = zip(*known, strict=True)
        ax.scatter(xs, ys, s=22, color="k", label=f"{_calc(data)} for both CO and H ({len(known)})")
    ax.set_xlabel(f"dE$_{{\\mathrm{{{MAP_X}}}}}$ / eV")
    ax.set_ylabel(f"dE$_{{\\mathrm{{{MAP_Y}}}}}$ / eV")
    ax.set_title("lowest-site adsorption energy per surface", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="best", framealpha=0.85)
    fig.tight_layout()
    image = _png_img(fig, f"dE_{MAP_X} vs dE_{MAP_Y} map")

    hits = sum(_in_window(x, target_x) and _in_window(y, target_y) for x, y, _ in points)
    caption = (
        f"{len(points)} of {len(surfaces)} surfaces have both values; {len(known)} calculated "
        f"({_calc(data)}) for "
        f"both (filled), the others use the surrogate for at least one (open). "
        f"{hits} lie in both target windows."
    )
    return f'{head}{image}<p class="caption">{escape(caption)}</p>'


def _candidate_table(rows: Sequence[dict]) -> str:
    header = (
        "<tr><th>rank</th><th>surface</th><th>bulk</th><th>Miller</th>"
        "<th>dE / eV</th><th>± std</th><th>source</th></tr>"
    )
    body = []
    for rank, row in enumerate(rows, start=1):
        std = _num(row.get("std"))
        body.append(
            "<tr>"
            f'<td class="num">{rank}</td>'
            f'<td class="name">{_text(row.get("surface"))}</td>'
            f"<td>{_text(row.get('bulk_formula'))}</td>"
            f"<td>{_miller_html(row.get('miller'))}</td>"
            f'<td class="num">{_fmt(row.get("energy"), "+.3f")}</td>'
            f'<td class="num">{"" if std is None else f"±{std:.3f}"}</td>'
            f"<td>{_text(row.get('source'))}</td>"
            "</tr>"
        )
    return f"<table>{header}{''.join(body)}</table>"


def _candidates_section(data: dict) -> str:
    candidates = data.get("candidates") or {}
    parts = ["<h2>Candidates</h2>"]
    for adsorbate in _adsorbates(data):
        if adsorbate not in candidates and adsorbate not in (data.get("targets") or {}):
            continue
        target = _target(data, adsorbate)
        goal = "" if target is None else f" (target {target[0]:+.2f} ± {target[1]:.2f} eV)"
        parts.append(f"<h3>{_text(adsorbate)}{escape(goal)}</h3>")
        rows = candidates.get(adsorbate) or []
        parts.append(_candidate_table(rows) if rows else _no_data())
    if len(parts) == 1:
        parts.append(_no_data())
    return "\n".join(parts)


def _parity_pairs(entry: dict | None) -> tuple[list[float], list[float], list[float | None]]:
    entry = entry or {}
    calculated = list(entry.get("calculated") or [])
    predicted = list(entry.get("predicted") or [])
    stds = list(entry.get("std") or [])
    xs, ys, es = [], [], []
    for i, (x, y) in enumerate(zip(calculated, predicted, strict=False)):
        x, y = _num(x), _num(y)
        if x is None or y is None:
            continue
        xs.append(x)
        ys.append(y)
        es.append(_num(stds[i]) if i < len(stds) else None)
    return xs, ys, es


def _parity_section(data: dict) -> str:
    head = f"<h2>Parity: prediction before the calculation vs {escape(_calc(data))}</h2>"
    parity = data.get("parity") or {}
    names = [a for a in _adsorbates(data) if a in parity or a in (MAP_X, MAP_Y)]
    pairs = {a: _parity_pairs(parity.get(a)) for a in names}
    if not any(xs for xs, _, _ in pairs.values()):
        return head + _no_data()

    fig = _figure(4.5 * len(names), 4.2)
    captions = []
    for index, adsorbate in enumerate(names):
        ax = fig.add_subplot(1, len(names), index + 1)
        xs, ys, es = pairs[adsorbate]
        if not xs:
            ax.text(0.5, 0.5, NO_DATA, ha="center", va="center", transform=ax.transAxes)
            ax.set_title(_mpl(adsorbate), fontsize=10)
            ax.set_xticks([])
            ax.set_yticks([])
            continue
        mae = sum(abs(y - x) for x, y in zip(xs, ys, strict=True)) / len(xs)
        lows = xs + [y - (e or 0.0) for y, e in zip(ys, es, strict=True)]
        highs = xs + [y + (e or 0.0) for y, e in zip(ys, es, strict=True)]
        lo, hi = min(lows), max(highs)
        pad = 0.05 * (hi - lo) or 0.1
        lo, hi = lo - pad, hi + pad
        ax.plot([lo, hi], [lo, hi], color="0.4", lw=1, ls="--", label="y = x")
        color = _color(adsorbate, index)
        if any(e is not None and e > 0 for e in es):
            ax.errorbar(
                xs,
                ys,
                yerr=[e or 0.0 for e in es],
                fmt="none",
                ecolor=color,
                alpha=0.35,
                lw=0.8,
            )
        ax.scatter(xs, ys, s=16, color=color, label=f"n = {len(xs)}")
        ax.set_xlim(lo, hi)
        ax.set_ylim(lo, hi)
        ax.set_aspect("equal", adjustable="box")
        ax.set_xlabel(f"{_calc(data)} dE$_{{\\mathrm{{{_mpl(adsorbate)}}}}}$ / eV")
        ax.set_ylabel("predicted dE / eV")
        ax.set_title(f"{_mpl(adsorbate)}: MAE {mae:.3f} eV", fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="upper left")
        captions.append(f"{adsorbate}: {len(xs)} pairs, MAE {mae:.3f} eV")
    fig.tight_layout()
    image = _png_img(fig, "parity plots")
    caption = "; ".join(captions) + ". Error bars: the surrogate's std at prediction time."
    return f'{head}{image}<p class="caption">{escape(caption)}</p>'


def _series(curve: Sequence[dict], field: str, adsorbate: str) -> tuple[list[float], list[float]]:
    xs, ys = [], []
    for row in curve:
        x = _num(row.get("calculations"))
        y = _num((row.get(field) or {}).get(adsorbate))
        if x is not None and y is not None:
            xs.append(x)
            ys.append(y)
    return xs, ys


def _curve_section(data: dict) -> str:
    head = "<h2>Learning curve</h2>"
    curve = data.get("curve") or []
    names = _adsorbates(data)
    series = {
        field: {a: _series(curve, field, a) for a in names}
        for field in ("mae", "coverage90", "hits")
    }
    has = {field: any(xs for xs, _ in by.values()) for field, by in series.items()}
    if not any(has.values()):
        return head + _no_data()

    panels = [
        ("mae", "MAE / eV", "MAE of predictions made before the calculation"),
        ("coverage90", "90 % interval coverage", "coverage of the 90 % interval"),
    ]
    if has["hits"]:
        panels.append(("hits", "hits found", "surfaces found in the target window"))
    from matplotlib.ticker import MaxNLocator

    fig = _figure(4.0 * len(panels), 3.8)
    for index, (field, ylabel, title) in enumerate(panels):
        ax = fig.add_subplot(1, len(panels), index + 1)
        if field == "coverage90":
            ax.axhspan(*COVERAGE_BAND, color="0.85", alpha=0.5, lw=0)
            for level in COVERAGE_BAND:
                ax.axhline(level, color="0.4", ls=":", lw=1)
            ax.set_ylim(-0.02, 1.05)
        drawn = False
        for a_index, adsorbate in enumerate(names):
            xs, ys = series[field][adsorbate]
            if not xs:
                continue
            drawn = True
            ax.plot(
                xs,
                ys,
                marker="o",
                ms=3.5,
                lw=1.2,
                color=_color(adsorbate, a_index),
                label=_mpl(adsorbate),
                drawstyle="steps-post" if field == "hits" else "default",
            )
        if drawn:
            ax.legend(fontsize=7, loc="best")
        if field == "hits":
            ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        else:
            ax.text(0.5, 0.5, NO_DATA, ha="center", va="center", transform=ax.transAxes)
        ax.set_xlabel("calculations")
        ax.set_ylabel(ylabel)
        ax.set_title(title, fontsize=9)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    image = _png_img(fig, "learning curve")
    caption = (
        "Each point is one loop cycle. The dotted lines mark "
        f"{COVERAGE_BAND[0]:.2f} and {COVERAGE_BAND[1]:.2f}: a calibrated 90 % interval covers "
        "about 90 % of the new results."
    )
    return f'{head}{image}<p class="caption">{escape(caption)}</p>'


def _versions(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k} v{v}" if v is not None else f"{k} –" for k, v in value.items())
    return "" if value is None else str(value)


def _cycles_section(data: dict) -> str:
    head = "<h2>Cycles</h2>"
    cycles = data.get("cycles") or []
    if not cycles:
        return head + _no_data()
    header = (
        "<tr><th>cycle</th><th>submitted</th><th>finished</th><th>failed</th>"
        "<th>seconds</th><th>model versions</th></tr>"
    )
    body = []
    for row in cycles:
        cells = [
            f'<td class="num">{_text(row.get(k))}</td>'
            for k in ("cycle", "submitted", "finished", "failed")
        ]
        cells.append(f'<td class="num">{_fmt(row.get("seconds"), ".1f")}</td>')
        cells.append(f"<td>{escape(_versions(row.get('model_versions')))}</td>")
        body.append(f"<tr>{''.join(cells)}</tr>")
    return f"{head}<table>{header}{''.join(body)}</table>"


# -- public API ----------------------------------------------------------------------------------
def render_report(data: dict) -> str:
    """The report as one HTML string (what :func:`write_report` writes).

    Parameters
    ----------
    data : dict
        The report data; see :func:`write_report`.

    Returns
    -------
    str
        A complete HTML document starting with ``<!DOCTYPE html>``.
    """
    sections = [
        _header(data),
        _map_section(data),
        _candidates_section(data),
        _parity_section(data),
        _curve_section(data),
        _cycles_section(data),
    ]
    title = _text(data.get("title") or "screener report")
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{title}</title>\n<style>{CSS}</style>\n</head>\n<body>\n"
        + "\n".join(sections)
        + "\n</body>\n</html>\n"
    )


def write_report(data: dict, path: str | Path) -> Path:
    """Write the HTML report of a screening run to ``path``, atomically.

    Parameters
    ----------
    data : dict
        Report data with the keys ``title``, ``space``, ``profile``, ``generated``, ``notice``,
        ``how_to_gpaw`` (strings), ``targets`` (``{adsorbate: {"target", "window"}}``),
        ``surfaces`` (rows with ``surface``, ``bulk_formula``, ``miller`` and per adsorbate
        ``{"energy", "std", "source"}`` or None), ``candidates`` (``{adsorbate: [rows]}``),
        ``parity`` (``{adsorbate: {"calculated", "predicted", "std"}}``, aligned lists), ``curve``
        (rows with ``cycle``, ``calculations`` and per-adsorbate dicts ``mae``,
        ``coverage90``, ``hits``) and ``cycles`` (rows with ``cycle``, ``submitted``,
        ``finished``, ``failed``, ``seconds``, ``model_versions``).  Lists may be empty and
        values None; such sections say "no data yet".  Missing keys count as empty.
    path : str or Path
        Where to write; parent folders are created.  The file is written to a temporary file
        in the same folder and moved into place, so readers never see a partial report.

    Returns
    -------
    Path
        The path written.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = render_report(data)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(tmp_name, 0o644)
        os.replace(tmp_name, path)
    except BaseException:
        try:
            os.unlink(tmp_name)
        except FileNotFoundError:
            pass
        raise
    return path


def report_summary(data: dict) -> str:
    """A few plain-text lines about the report data, for logs.

    Parameters
    ----------
    data : dict
        The report data; see :func:`write_report`.

    Returns
    -------
    str
        Lines without a trailing newline: the run, surface counts, the top candidate per
        adsorbate and the loop's progress.
    """
    surfaces = data.get("surfaces") or []
    names = _adsorbates(data)
    lines = [
        f"{data.get('title') or 'screener report'} "
        f"(space {data.get('space')}, profile {data.get('profile')})"
    ]
    counts = []
    for adsorbate in names:
        known = [
            row[adsorbate]
            for row in surfaces
            if row.get(adsorbate) and _num(row[adsorbate].get("energy")) is not None
        ]
        done = sum(1 for entry in known if entry.get("source") == "calculated")
        counts.append(f"{adsorbate} {len(known)} ({done} calculated)")
    both = len(_map_points(surfaces))
    lines.append(
        f"surfaces: {len(surfaces)}; with a value: {', '.join(counts) or 'none'}; "
        f"with both {MAP_X} and {MAP_Y}: {both}"
    )
    candidates = data.get("candidates") or {}
    for adsorbate in names:
        rows = candidates.get(adsorbate) or []
        if not rows:
            lines.append(f"{adsorbate}: no candidates yet")
            continue
        top = rows[0]
        std = _num(top.get("std"))
        spread = "" if std is None else f" ± {std:.3f}"
        lines.append(
            f"{adsorbate}: {len(rows)} candidates; top {top.get('surface')} "
            f"({top.get('bulk_formula')} {_miller_text(top.get('miller'))}) "
            f"dE {_fmt(top.get('energy'), '+.3f')}{spread} eV [{top.get('source')}]"
        )
    cycles = data.get("cycles") or []
    curve = data.get("curve") or []
    if cycles or curve:
        calculations = _num(curve[-1].get("calculations")) if curve else None
        done = "" if calculations is None else f", {int(calculations)} calculations"
        lines.append(f"cycles: {len(cycles) or len(curve)}{done}")
    return "\n".join(lines)
