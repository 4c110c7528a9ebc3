"""The campaign's figures, drawn with plotly from :mod:`screener.views`: one module for the
dashboard and the HTML report.

* :func:`map_figure`: binding energy of one adsorbate against another per surface, with both
  target windows (the figure of Tran & Ulissi); markers below ``DENSITY_ABOVE`` surfaces, a
  density above.
* :func:`parity_figure`: prospective predictions (made when the loop chose each site) against
  the calculated dE, with +-1 std error bars, per model version.
* :func:`learning_curve_figure`: prospective MAE and 90% coverage per cycle against the
  calculations done.
* :func:`calibration_figure`: observed against nominal coverage of the predicted intervals.
* :func:`hits_figure`: results found in the target window against the
  calculations done, per adsorbate.
* :func:`structure_figure`: a slab + adsorbate in 3D (atoms coloured as Jmol does, metal bonds
  from :mod:`workflows.bonding`).

Every figure is a ``plotly.graph_objects.Figure``; nothing here reads the store.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go

from screener.views import CalibrationPoint, CurvePoint, EnergyMap, HitPoint, Prospective

DENSITY_ABOVE = 20_000  # the map draws a density instead of markers past this many surfaces
WEBGL_ABOVE = 5_000  # markers are SVG up to this many (each a DOM node), WebGL beyond
CALCULATED, PREDICTED = "#1f77b4", "#ff7f0e"
WINDOW_FILL = "rgba(44, 160, 44, 0.12)"
LAYOUT = {"template": "plotly_white", "margin": {"l": 60, "r": 20, "t": 80, "b": 50}}
# the title on a line of its own under the mode bar (which sits at the figure's top right)
TITLE = {"x": 0.01, "xanchor": "left", "y": 1.0, "yanchor": "top", "pad": {"t": 34}}


def _figure(title: str) -> go.Figure:
    """An empty figure with the shared layout and ``title``."""
    return go.Figure(layout={**LAYOUT, "title": {"text": title, **TITLE}})


def _miller(miller: Sequence[int]) -> str:
    return "(" + "".join(str(i) for i in miller) + ")"


def empty_figure(message: str) -> go.Figure:
    """A blank figure that says why it is blank."""
    fig = go.Figure(layout=LAYOUT)
    fig.add_annotation(text=message, showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper")
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return fig


def map_figure(emap: EnergyMap, *, density_above: int = DENSITY_ABOVE) -> go.Figure:
    """dE(y adsorbate) against dE(x adsorbate), one point per surface; ``customdata[0]`` of a
    marker is its surface key (the dashboard opens that surface on click)."""
    x, y = emap.x, emap.y
    title = f"binding energies per surface (lowest site), {emap.profile}"
    if not emap.points:
        return empty_figure(f"no surface has both {x.adsorbate} and {y.adsorbate} energies yet")
    fig = _figure(title)
    if len(emap.points) > density_above:
        fig.add_trace(
            go.Histogram2d(
                x=[p.x for p in emap.points],
                y=[p.y for p in emap.points],
                nbinsx=120,
                nbinsy=120,
                colorscale="Blues",
                name="surfaces",
                colorbar={"title": "surfaces"},
            )
        )
    else:
        for calculated, name, color in (
            (True, "calculated", CALCULATED),
            (False, "predicted", PREDICTED),
        ):
            points = [p for p in emap.points if p.calculated == calculated]
            if not points:
                continue
            kind = go.Scattergl if len(emap.points) > WEBGL_ABOVE else go.Scatter
            # numpy arrays: plotly validates them whole, lists element by element (10x slower)
            custom = np.empty((len(points), 6), dtype=object)
            custom[:] = [
                (p.surface, p.bulk_formula, _miller(p.miller), p.termination, p.x_std, p.y_std)
                for p in points
            ]
            fig.add_trace(
                kind(
                    x=np.fromiter((p.x for p in points), float, len(points)),
                    y=np.fromiter((p.y for p in points), float, len(points)),
                    mode="markers",
                    name=name,
                    marker={"color": color, "size": 7, "opacity": 0.8},
                    customdata=custom,
                    hovertemplate=(
                        "%{customdata[1]} %{customdata[2]} %{customdata[3]}<br>"
                        f"{x.adsorbate} %{{x:.3f}} +- %{{customdata[4]:.3f}} eV<br>"
                        f"{y.adsorbate} %{{y:.3f}} +- %{{customdata[5]:.3f}} eV"
                        "<extra>%{fullData.name}</extra>"
                    ),
                )
            )
    fig.add_vrect(
        x0=x.target - x.window, x1=x.target + x.window, fillcolor=WINDOW_FILL, line_width=0
    )
    fig.add_hrect(
        y0=y.target - y.window, y1=y.target + y.window, fillcolor=WINDOW_FILL, line_width=0
    )
    fig.update_xaxes(title=f"dE {x.adsorbate} (eV); window {x.target:g} +- {x.window:g}")
    fig.update_yaxes(title=f"dE {y.adsorbate} (eV); window {y.target:g} +- {y.window:g}")
    return fig


def parity_figure(points: Sequence[Prospective], adsorbate: str) -> go.Figure:
    """Prospective prediction against calculated dE, +-1 std bars, one trace per model version."""
    if not points:
        return empty_figure(f"no {adsorbate} calculation with a stored prediction yet")
    fig = _figure(f"{adsorbate}: predicted before, calculated after")
    versions = sorted({p.model_version for p in points}, key=lambda v: (v is None, v or 0))
    for version in versions:
        group = [p for p in points if p.model_version == version]
        fig.add_trace(
            go.Scatter(
                x=[p.calculated for p in group],
                y=[p.predicted for p in group],
                error_y={"type": "data", "array": [p.std or 0.0 for p in group], "thickness": 1},
                mode="markers",
                name=f"model v{version}" if version is not None else "no model",
                customdata=[[p.cycle, p.site_id] for p in group],
                hovertemplate=(
                    "calculated %{x:.3f} eV<br>predicted %{y:.3f} eV<br>cycle %{customdata[0]}"
                    "<extra>%{fullData.name}</extra>"
                ),
            )
        )
    values = [v for p in points for v in (p.calculated, p.predicted)]
    low, high = min(values), max(values)
    pad = 0.05 * (high - low or 1.0)
    fig.add_trace(
        go.Scatter(
            x=[low - pad, high + pad],
            y=[low - pad, high + pad],
            mode="lines",
            line={"color": "grey", "dash": "dash"},
            name="y = x",
            hoverinfo="skip",
        )
    )
    mae = float(np.mean([abs(p.error) for p in points]))
    fig.update_layout(title_text=f"{adsorbate}: prospective MAE {mae:.3f} eV over {len(points)}")
    fig.update_xaxes(title="calculated dE (eV)")
    fig.update_yaxes(title="predicted when chosen (eV)")
    return fig


def learning_curve_figure(curve: Sequence[CurvePoint], adsorbate: str) -> go.Figure:
    """Per cycle: MAE of the predictions made before its calculations, and their 90% coverage."""
    if not curve:
        return empty_figure(f"no {adsorbate} calculation with a stored prediction yet")
    fig = _figure(f"{adsorbate}: prospective accuracy per cycle")
    x = [c.calculations for c in curve]
    fig.add_trace(
        go.Scatter(
            x=x,
            y=[c.mae for c in curve],
            mode="lines+markers",
            name="MAE (eV)",
            customdata=[[c.cycle, c.n] for c in curve],
            hovertemplate="cycle %{customdata[0]} (%{customdata[1]} picks): MAE %{y:.3f} eV"
            "<extra></extra>",
        )
    )
    fig.add_trace(
        go.Scatter(
            x=x,
            y=[c.coverage90 for c in curve],
            mode="lines+markers",
            name="90% coverage",
            yaxis="y2",
            hovertemplate="coverage %{y:.2f}<extra></extra>",
        )
    )
    fig.update_layout(
        xaxis={"title": "calculations done"},
        yaxis={"title": "prospective MAE (eV)", "rangemode": "tozero"},
        yaxis2={
            "title": "90% interval coverage",
            "overlaying": "y",
            "side": "right",
            "range": [0, 1.05],
            "tickmode": "linear",  # its own ticks, not the MAE axis's
            "tick0": 0,
            "dtick": 0.2,
            "showgrid": False,
        },
        legend={"orientation": "h", "y": -0.2},
    )
    return fig


def calibration_figure(points: Sequence[CalibrationPoint], adsorbate: str) -> go.Figure:
    """Observed coverage of the central intervals mean +- z std against their nominal level."""
    if not points:
        return empty_figure(f"no {adsorbate} prediction with a std yet")
    fig = _figure(f"{adsorbate}: calibration ({points[0].n} results)")
    fig.add_trace(
        go.Scatter(
            x=[p.nominal for p in points],
            y=[p.observed for p in points],
            mode="lines+markers",
            name="observed",
        )
    )
    fig.add_trace(
        go.Scatter(
            x=[0, 1], y=[0, 1], mode="lines", line={"color": "grey", "dash": "dash"}, name="ideal"
        )
    )
    fig.update_xaxes(title="nominal coverage", range=[0, 1])
    fig.update_yaxes(title="observed coverage", range=[0, 1.02])
    return fig


def hits_figure(series: Mapping[str, Sequence[HitPoint]]) -> go.Figure:
    """Results in the target window found so far, one step line per adsorbate.

    Parameters
    ----------
    series : mapping of str to sequence of HitPoint
        Adsorbate -> its :func:`screener.views.hits_curve`.

    Returns
    -------
    go.Figure
        One trace per adsorbate with points (x: calculations done, y: hits so far).
    """
    drawn = {a: points for a, points in series.items() if points}
    if not drawn:
        return empty_figure("no calculation yet")
    fig = _figure("results in the target window found so far")
    for adsorbate, points in drawn.items():
        fig.add_trace(
            go.Scatter(
                x=[p.calculations for p in points],
                y=[p.hits for p in points],
                mode="lines+markers",
                line={"shape": "hv"},
                name=adsorbate,
                customdata=[[p.cycle] for p in points],
                hovertemplate=f"{adsorbate}, cycle %{{customdata[0]}}: %{{y}} in the window"
                "<extra></extra>",
            )
        )
    fig.update_xaxes(title="calculations done")
    fig.update_yaxes(title="in the target window", rangemode="tozero")
    return fig


def structure_figure(atoms, title: str = "") -> go.Figure:
    """A slab + adsorbate in 3D: atoms as spheres (Jmol colours, covalent radii), metal bonds
    inside the cell, adsorbate (tag 0) atoms outlined."""
    from ase.data import chemical_symbols, covalent_radii
    from ase.data.colors import jmol_colors

    from workflows.bonding import bonds

    tags = atoms.get_tags()
    positions = atoms.positions
    fig = _figure(title)
    slab_index = np.flatnonzero(tags != 0)
    if len(slab_index):
        slab_bonds = bonds(atoms[slab_index])
        xs, ys, zs = [], [], []
        for i, (neighbours, offsets) in enumerate(
            zip(slab_bonds.neighbours, slab_bonds.offsets, strict=True)
        ):
            for j, offset in zip(neighbours, offsets, strict=True):
                if j <= i or np.any(offset):
                    continue
                a, b = positions[slab_index[i]], positions[slab_index[j]]
                xs += [a[0], b[0], None]
                ys += [a[1], b[1], None]
                zs += [a[2], b[2], None]
        fig.add_trace(
            go.Scatter3d(
                x=xs,
                y=ys,
                z=zs,
                mode="lines",
                line={"color": "#999", "width": 3},
                hoverinfo="skip",
                name="bonds",
            )
        )
    symbols = atoms.get_chemical_symbols()
    for symbol, adsorbate in dict.fromkeys(
        (s, bool(t == 0)) for s, t in zip(symbols, tags, strict=True)
    ):
        index = [
            i
            for i, (s, t) in enumerate(zip(symbols, tags, strict=True))
            if s == symbol and (t == 0) == adsorbate
        ]
        number = chemical_symbols.index(symbol)
        r, g, b = (255 * jmol_colors[number]).astype(int)
        fig.add_trace(
            go.Scatter3d(
                x=positions[index, 0],
                y=positions[index, 1],
                z=positions[index, 2],
                mode="markers",
                name=f"{symbol} (adsorbate)" if adsorbate else symbol,
                marker={
                    "size": 10 + 14 * float(covalent_radii[number]),
                    "color": f"rgb({r},{g},{b})",
                    "line": {"width": 4 if adsorbate else 0, "color": "black"},
                },
                customdata=[[i, int(tags[i])] for i in index],
                hovertemplate=f"{symbol} %{{customdata[0]}} (tag %{{customdata[1]}})"
                "<extra></extra>",
            )
        )
    fig.update_layout(
        scene={
            "aspectmode": "data",
            "xaxis": {"title": "x (A)"},
            "yaxis": {"title": "y (A)"},
            "zaxis": {"title": "z (A)"},
        },
        height=520,
    )
    return fig
