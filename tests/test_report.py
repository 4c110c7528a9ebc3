"""The HTML report: offline (plotly.js inlined once), the figures' traces and numbers, escaping,
honest empty panels, atomic write, summary; and the demo's helpers on its data."""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
from html.parser import HTMLParser
from pathlib import Path

import pytest
from plotly.offline import get_plotlyjs

from screener import views
from screener.demo import hits_found, parity_mae
from screener.report import AdsorbateReport, ReportData, report_summary, write_report

NOTICE = "EMT is a toy potential: the energies below are not DFT & only show the loop working."
HOSTILE = "<script>alert(1)</script>"
SECTIONS = ("header", "candidates", "map", "parity", "learning-curve", "calibration", "cycles")


# -- data ----------------------------------------------------------------------------------------
def _row(
    adsorbate: str,
    name: str,
    energy: float,
    std: float,
    source: str,
    miller=(1, 1, 1),
    formula="CuPd",
) -> views.CandidateRow:
    target = {"CO": -0.67, "H": -0.27}[adsorbate]
    return views.CandidateRow(
        surface_id=name,
        surface=name,
        bulk_formula=formula,
        elements=("Cu", "Pd"),
        miller=tuple(miller),
        termination="0.0/top",
        adsorbate=adsorbate,
        energy=energy,
        std=std,
        source=source,
        site_id=f"site-{name}",
        n_calculated=int(source == "calculated"),
        distance=abs(energy - target),
        in_window=abs(energy - target) <= 0.1,
    )


def _point(name: str, x: float, y: float, calculated: bool, formula="CuPd") -> views.MapPoint:
    source = "calculated" if calculated else "predicted"
    return views.MapPoint(
        surface_id=name,
        surface=f"proto:{name}",
        bulk_formula=formula,
        miller=(1, 1, 1),
        termination="0.0/top",
        x=x,
        x_std=0.0 if calculated else 0.1,
        x_source=source,
        y=y,
        y_std=0.0 if calculated else 0.05,
        y_source=source,
    )


def _prospective(
    adsorbate: str, pairs: list[tuple[int, int | None, float, float | None, float]]
) -> list[views.Prospective]:
    """(cycle, model version, predicted, std, calculated) -> Prospective, in that order."""
    start = dt.datetime(2026, 11, 25, 12, 0)
    return [
        views.Prospective(
            job_key=f"{adsorbate}-{i}",
            site_id=f"site-{adsorbate}-{i}",
            adsorbate=adsorbate,
            cycle=cycle,
            model_version=version,
            predicted=predicted,
            std=std,
            calculated=calculated,
            finished=start + dt.timedelta(minutes=i),
        )
        for i, (cycle, version, predicted, std, calculated) in enumerate(pairs)
    ]


CO_PAIRS = [(2, 1, -0.4, 0.1, -0.5), (2, 1, 0.0, 0.2, 0.1), (3, 2, -0.3, 0.1, -0.62)]
H_PAIRS = [(2, 1, -0.2, 0.1, -0.3), (3, 2, -0.25, None, -0.28)]


def _adsorbate(name: str, target: float, rows, pairs) -> AdsorbateReport:
    points = _prospective(name, pairs)
    return AdsorbateReport(
        adsorbate=name,
        target=target,
        window=0.1,
        candidates=rows,
        surfaces=24,
        calculated_surfaces=sum(r.source == "calculated" for r in rows),
        prospective=points,
        curve=views.learning_curve(points),
        calibration=views.calibration(points),
        hits=views.hits_curve(points, target, 0.1),
    )


@pytest.fixture
def full_data() -> ReportData:
    co_rows = [
        _row("CO", "proto:fcc:Pd|100|0.0/top", -0.68, 0.1, "predicted", (1, 0, 0)),
        _row("CO", "<b>evil</b>", -0.61, 0.0, "calculated", (1, -1, 0), formula=HOSTILE),
    ]
    h_rows = [_row("H", "proto:fcc:Cu|111|0.0/top", -0.3, 0.0, "calculated")]
    points = [
        _point("a", -0.5, -0.3, True),
        _point("b", -0.68, -0.25, False, formula=HOSTILE),
        _point("c", 0.1, -0.6, False),
    ]
    windows = (views.Window("CO", -0.67, 0.1), views.Window("H", -0.27, 0.1))
    cycles = [
        views.CycleRow(
            1, "emt", dt.datetime(2026, 11, 25, 12, 0), 12.3, 16, {"ingest": 0.5, "train": 1}
        ),
        views.CycleRow(
            2, "emt", dt.datetime(2026, 11, 25, 12, 1), 10.04, 16, {"ingest": 0.4, "submit": 2}
        ),
    ]
    return ReportData(
        title=f"screener demo: Ag-Au-Cu-Pd-Pt {HOSTILE}",
        space="Ag-Au-Cu-Pd-Pt",
        profile="emt",
        generated="2026-11-25 12:00 UTC",
        notice=NOTICE,
        how_to_gpaw="screener run --space Ag-Au-Cu-Pd-Pt --calculator gpaw",
        adsorbates=[
            _adsorbate("CO", -0.67, co_rows, CO_PAIRS),
            _adsorbate("H", -0.27, h_rows, H_PAIRS),
        ],
        energy_map=views.EnergyMap(windows[0], windows[1], points, "emt"),
        cycles=cycles,
    )


@pytest.fixture
def empty_data() -> ReportData:
    windows = (views.Window("CO", -0.67, 0.1), views.Window("H", -0.27, 0.1))
    return ReportData(
        title="empty",
        space="Cu-Pd",
        profile="emt",
        generated="2026-11-25 12:00 UTC",
        notice=NOTICE,
        how_to_gpaw="screener run --space Cu-Pd --calculator gpaw",
        adsorbates=[_adsorbate("CO", -0.67, [], []), _adsorbate("H", -0.27, [], [])],
        energy_map=views.EnergyMap(windows[0], windows[1], [], "emt"),
        cycles=[],
    )


# -- reading the page back -----------------------------------------------------------------------
class _Page(HTMLParser):
    """Tags with their attributes, the figures' JSON and the text of each section."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.scripts: list[dict[str, str | None]] = []
        self.figures: dict[str, list[dict]] = {s: [] for s in SECTIONS}
        self.text: dict[str, str] = dict.fromkeys(SECTIONS, "")
        self.section: str | None = None
        self._script: dict[str, str | None] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        self.tags.append((tag, attributes))
        if tag == "section":
            self.section = attributes.get("id")
        if tag == "script":
            self._script = attributes
            self.scripts.append(attributes)

    def handle_endtag(self, tag: str) -> None:
        if tag == "section":
            self.section = None
        if tag == "script":
            self._script = None

    def handle_data(self, data: str) -> None:
        if self._script is not None:
            if self._script.get("type") == "application/json" and self.section:
                self.figures[self.section].append(json.loads(data))
            return
        if self.section:
            self.text[self.section] += data


def _read(path: Path) -> tuple[str, _Page]:
    assert path.is_file()
    text = path.read_text(encoding="utf-8")
    page = _Page()
    page.feed(text)
    page.close()
    return text, page


def _decoded(value):
    """A figure array as a list: plotly writes numpy arrays as {"dtype", "bdata"} (base64)."""
    if isinstance(value, dict) and "bdata" in value:
        import numpy as np

        raw = np.frombuffer(base64.b64decode(value["bdata"]), dtype=value["dtype"])
        return raw.reshape(value["shape"]).tolist() if "shape" in value else raw.tolist()
    return value


def _trace(fig: dict, name: str) -> dict:
    found = [t for t in fig["data"] if t.get("name") == name]
    assert len(found) == 1, [t.get("name") for t in fig["data"]]
    return {k: _decoded(v) for k, v in found[0].items()}


# -- tests ---------------------------------------------------------------------------------------
def test_the_report_is_one_offline_file_with_plotly_inlined_once(full_data, tmp_path):
    target = tmp_path / "out" / "report.html"
    assert write_report(full_data, str(target)) == target
    text, page = _read(target)
    assert text.startswith("<!DOCTYPE html>") and text.rstrip().endswith("</html>")
    assert text.count(get_plotlyjs()) == 1
    assert text.count("* plotly.js v") == get_plotlyjs().count("* plotly.js v")
    # nothing is fetched: no script or style sheet from elsewhere, no link to anywhere
    assert not [t for t, _ in page.tags if t in ("link", "iframe", "img", "object", "embed")]
    assert all("src" not in attributes for attributes in page.scripts)
    for tag, attributes in page.tags:
        for key in ("src", "href", "data", "action"):
            value = attributes.get(key) or ""
            assert "http://" not in value and "https://" not in value, (tag, attributes)
    assert "mathjax" not in " ".join(str(a) for _, a in page.tags).lower()
    assert [p.name for p in target.parent.iterdir()] == ["report.html"]  # no temporary file


def test_every_section_draws_its_figures_with_the_numbers_given(full_data, tmp_path):
    _, page = _read(write_report(full_data, tmp_path / "report.html"))
    assert [len(page.figures[s]) for s in SECTIONS] == [0, 0, 1, 2, 3, 2, 0]
    for section in SECTIONS:
        assert "no data yet" not in page.text[section], section

    # the map: calculated and predicted surfaces told apart, both windows drawn
    (emap,) = page.figures["map"]
    calculated, predicted = _trace(emap, "calculated"), _trace(emap, "predicted")
    assert (calculated["x"], calculated["y"]) == ([-0.5], [-0.3])
    assert (predicted["x"], predicted["y"]) == ([-0.68, 0.1], [-0.25, -0.6])
    assert len(emap["layout"]["shapes"]) == 2
    assert "3 surfaces with both energies" in page.text["map"]
    assert "1 lie in both target windows" in page.text["map"]

    # parity: the predicted/calculated pairs given, with their std as error bars
    co, h = page.figures["parity"]
    first, second = _trace(co, "model v1"), _trace(co, "model v2")
    assert (first["x"], first["y"]) == ([-0.5, 0.1], [-0.4, 0.0])
    assert first["error_y"]["array"] == [0.1, 0.2]
    assert (second["x"], second["y"]) == ([-0.62], [-0.3])
    assert "MAE 0.173 eV over 3" in co["layout"]["title"]["text"]
    assert _trace(h, "model v2")["error_y"]["array"] == [0.0]  # no std stored: no bar
    assert "Prospective MAE: CO 0.173 eV over 3; H 0.065 eV over 2" in page.text["parity"]

    # the learning curve: prospective MAE and coverage per cycle, and the hits found
    co_curve, h_curve, hits = page.figures["learning-curve"]
    mae = _trace(co_curve, "MAE (eV)")
    assert mae["x"] == [2, 3]
    assert mae["y"] == pytest.approx([0.1, 0.32])
    assert _trace(co_curve, "90% coverage")["y"] == [1.0, 0.0]
    assert _trace(h_curve, "90% coverage")["y"] == [1.0, None]  # cycle 3: no std
    assert "prospective" in co_curve["layout"]["title"]["text"]
    assert "inner" not in page.text["learning-curve"].lower()
    assert (_trace(hits, "CO")["x"], _trace(hits, "CO")["y"]) == ([2, 3], [0, 1])
    assert _trace(hits, "H")["y"] == [1, 2]

    # calibration: observed against nominal coverage per adsorbate
    co_cal, h_cal = page.figures["calibration"]
    observed = _trace(co_cal, "observed")
    assert observed["x"] == list(views.CALIBRATION_LEVELS)
    assert observed["y"][-1] == pytest.approx(2 / 3)  # |error| / std = 1, 0.5, 3.2

    # the tables
    assert "-0.680" in page.text["candidates"] and "±0.100" in page.text["candidates"]
    assert "The 2 of 24 surfaces nearest the target" in page.text["candidates"]
    assert "ingest / s" in page.text["cycles"] and "train / s" in page.text["cycles"]
    assert "10.0" in page.text["cycles"]


def test_strings_from_the_store_are_escaped(full_data, tmp_path):
    text, page = _read(write_report(full_data, tmp_path / "report.html"))
    body = text.replace(get_plotlyjs(), "")
    assert HOSTILE not in body and "<b>evil</b>" not in body
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body  # title, table
    assert "&lt;b&gt;evil&lt;/b&gt;" in body
    assert "\\u003cscript\\u003ealert(1)" in body  # the map's hover data, as JSON escapes
    # it is data, not markup: it reads back as the string it was
    (emap,) = page.figures["map"]
    assert _trace(emap, "predicted")["customdata"][0][1] == HOSTILE
    # only the scripts the report writes: plotly.js, its config, one per figure, the renderer
    assert len(page.scripts) == 2 + 8 + 1
    # Miller indices, negatives overlined; EMT results are never called DFT
    assert '1<span class="ovl">1</span>0' in body
    assert "Parity: the prediction made when the site was chosen vs EMT" in text
    assert body.count("DFT") == NOTICE.count("DFT")  # only in the notice that they are not


def test_empty_data_says_no_data_yet_in_each_panel_and_loads_nothing(empty_data, tmp_path):
    text, page = _read(write_report(empty_data, tmp_path / "report.html"))
    assert NOTICE.replace("&", "&amp;") in text
    assert all(not figs for figs in page.figures.values())
    assert get_plotlyjs() not in text and not page.scripts  # nothing to draw, nothing inlined
    counts = {s: page.text[s].count("no data yet") for s in SECTIONS}
    # per adsorbate: candidates, parity, learning curve, calibration; the map; the cycles
    assert counts == {
        "header": 0,
        "candidates": 2,
        "map": 1,
        "parity": 2,
        "learning-curve": 2,
        "calibration": 2,
        "cycles": 1,
    }


def test_a_learning_curve_with_data_is_never_stamped_no_data(full_data, tmp_path):
    """The old report paired an ``else`` with ``field == "hits"``: every curve panel with data
    said "no data yet".  Only the adsorbate without results may say so."""
    co, h = full_data.adsorbates
    without_h = ReportData(
        **{
            **full_data.__dict__,
            "adsorbates": [co, AdsorbateReport("H", -0.27, 0.1, candidates=h.candidates)],
        }
    )
    _, page = _read(write_report(without_h, tmp_path / "report.html"))
    curve = page.text["learning-curve"]
    assert curve.count("no data yet") == 1 and "no H calculation" in curve
    co_curve, hits = page.figures["learning-curve"]
    assert _trace(co_curve, "MAE (eV)")["y"] == pytest.approx([0.1, 0.32])
    assert [t["name"] for t in hits["data"]] == ["CO"]


def test_a_space_without_the_map_pair(full_data, tmp_path):
    data = ReportData(**{**full_data.__dict__, "energy_map": None})
    _, page = _read(write_report(data, tmp_path / "report.html"))
    assert not page.figures["map"] and page.text["map"].count("no data yet") == 1


def test_overwrite_is_atomic_replacement(full_data, empty_data, tmp_path, monkeypatch):
    path = tmp_path / "report.html"
    write_report(empty_data, path)
    first = path.read_text()
    write_report(ReportData(**{**empty_data.__dict__, "title": "second"}), path)
    second = path.read_text()
    assert first != second and "<title>second</title>" in second
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.html"]

    def fail(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError, match="disk full"):
        write_report(full_data, path)
    assert path.read_text() == second  # the old report stays whole
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.html"]


def test_summary(full_data, empty_data):
    summary = report_summary(full_data)
    lines = summary.splitlines()
    assert 3 <= len(lines) <= 8
    assert "surfaces with a dE: CO 24 (1 calculated), H 24 (1 calculated)" in summary
    assert "with both CO and H: 3 (1 calculated)" in summary
    assert (
        "CO: top proto:fcc:Pd|100|0.0/top (CuPd 100) dE -0.680 ± 0.100 eV [predicted]; "
        "prospective MAE 0.173 eV over 3"
    ) in summary
    assert "cycles: 2; 5 calculations with a stored prediction" in summary

    empty = report_summary(empty_data)
    assert "CO: no candidates yet" in empty and "H: no candidates yet" in empty


def test_hits_and_prospective_mae_of_the_demo(full_data, empty_data):
    assert parity_mae(full_data) == pytest.approx({"CO": 0.52 / 3, "H": 0.065})
    assert hits_found(full_data) == {"CO": 1, "H": 2}
    assert parity_mae(empty_data) == {"CO": None, "H": None}
    assert hits_found(empty_data) == {"CO": 0, "H": 0}


def test_hits_curve_counts_results_in_the_window_per_cycle_cumulatively():
    points = _prospective(
        "CO",
        [(3, 2, 0.0, 0.1, -0.7), (1, None, 0.0, 0.1, -0.6), (1, None, 0.0, 0.1, -0.2)],
    )
    curve = views.hits_curve(points, -0.67, 0.1)
    assert curve == [views.HitPoint(1, 2, 1), views.HitPoint(3, 3, 2)]
    assert [c.calculations for c in views.learning_curve(points)] == [2, 3]
    assert views.hits_curve([], -0.67, 0.1) == []
