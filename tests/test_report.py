"""The HTML report: sections, inline images, escaping, empty data, atomic write, summary."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import pytest

from screener.report import report_summary, write_report

IMG = re.compile(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)"')
NOTICE = "EMT is a toy potential: the energies below are not DFT & only show the loop working."


def _surface(name: str, co: dict | None, h: dict | None, miller=(1, 1, 1)) -> dict:
    return {
        "surface": name,
        "bulk_formula": name.split(":")[2].split("|")[0],
        "miller": list(miller),
        "CO": co,
        "H": h,
    }


def _entry(energy: float, std: float, source: str) -> dict:
    return {"energy": energy, "std": std, "source": source}


def _candidate(surface: str, energy: float, std: float, source: str, miller=(1, 1, 1)) -> dict:
    return {
        "surface": surface,
        "bulk_formula": "CuPd",
        "miller": list(miller),
        "energy": energy,
        "std": std,
        "source": source,
    }


@pytest.fixture
def full_data() -> dict:
    surfaces = [
        _surface(
            "proto:fcc:Cu|111|0.0/top",
            _entry(-0.5, 0.0, "calculated"),
            _entry(-0.3, 0.0, "calculated"),
        ),
        _surface(
            "proto:fcc:Pd|100|0.0/top",
            _entry(-0.68, 0.1, "predicted"),
            _entry(-0.25, 0.12, "predicted"),
            (1, 0, 0),
        ),
        _surface("proto:fcc:Ag|111|0.0/top", _entry(0.1, 0.0, "calculated"), None),
        _surface(
            "proto:fcc:Au|211|0.0/top",
            _entry(-0.2, 0.0, "calculated"),
            _entry(float("nan"), 0, "x"),
        ),
    ]
    for i in range(20):
        surfaces.append(
            _surface(
                f"proto:L1_0:CuPd|{i}|0.0/top",
                _entry(-1.0 + 0.05 * i, 0.1, "predicted"),
                _entry(-0.6 + 0.03 * i, 0.05, "calculated" if i % 2 else "predicted"),
            )
        )
    return {
        "title": "screener demo: Ag-Au-Cu-Pd-Pt <script>alert(1)</script>",
        "space": "Ag-Au-Cu-Pd-Pt",
        "profile": "emt",
        "generated": "2026-11-25 12:00 UTC",
        "notice": NOTICE,
        "how_to_gpaw": "screener run --space Ag-Au-Cu-Pd-Pt --calculator gpaw",
        "targets": {"CO": {"target": -0.67, "window": 0.1}, "H": {"target": -0.27, "window": 0.1}},
        "surfaces": surfaces,
        "candidates": {
            "CO": [
                _candidate("proto:fcc:Pd|100|0.0/top", -0.68, 0.1, "predicted", (1, 0, 0)),
                _candidate("<script>evil()</script>", -0.61, 0.0, "calculated", (1, -1, 0)),
            ],
            "H": [_candidate("proto:fcc:Cu|111|0.0/top", -0.3, 0.0, "calculated")],
        },
        "parity": {
            "CO": {
                "calculated": [-0.5, 0.1, -0.2],
                "predicted": [-0.4, 0.0, -0.3],
                "std": [0.1, 0.2, 0.1],
            },
            "H": {"calculated": [-0.3, -0.1], "predicted": [-0.2, None], "std": [0.1, 0.1]},
        },
        "curve": [
            {
                "cycle": 1,
                "calculations": 16,
                "mae": {"CO": 0.2, "H": None},
                "coverage90": {"CO": 0.9, "H": None},
                "hits": {"CO": 1, "H": 0},
            },
            {
                "cycle": 2,
                "calculations": 32,
                "mae": {"CO": 0.15, "H": 0.1},
                "coverage90": {"CO": 0.88, "H": 0.93},
                "hits": {"CO": 2, "H": 1},
            },
        ],
        "cycles": [
            {
                "cycle": 1,
                "submitted": 16,
                "finished": 16,
                "failed": 0,
                "seconds": 12.3,
                "model_versions": {"CO": 1, "H": 1},
            },
            {
                "cycle": 2,
                "submitted": 16,
                "finished": 15,
                "failed": 1,
                "seconds": 10.04,
                "model_versions": {"CO": 2, "H": None},
            },
        ],
    }


@pytest.fixture
def empty_data() -> dict:
    return {
        "title": "empty",
        "space": "Cu-Pd",
        "profile": "emt",
        "generated": "2026-11-25 12:00 UTC",
        "notice": NOTICE,
        "how_to_gpaw": "screener run --space Cu-Pd --calculator gpaw",
        "targets": {"CO": {"target": -0.67, "window": 0.1}, "H": {"target": -0.27, "window": 0.1}},
        "surfaces": [_surface("proto:fcc:Cu|111|0.0/top", None, _entry(-0.3, 0.1, "predicted"))],
        "candidates": {"CO": [], "H": []},
        "parity": {
            "CO": {"calculated": [], "predicted": [], "std": []},
            "H": {"calculated": [], "predicted": [], "std": []},
        },
        "curve": [],
        "cycles": [],
    }


def _read(path: Path) -> str:
    assert path.is_file()
    assert path.stat().st_size < 2_000_000
    return path.read_text(encoding="utf-8")


def test_full_report(full_data: dict, tmp_path: Path) -> None:
    target = tmp_path / "out" / "report.html"
    written = write_report(full_data, str(target))
    assert written == target
    text = _read(target)
    assert text.startswith("<!DOCTYPE html>")
    assert text.rstrip().endswith("</html>")
    assert NOTICE.replace("&", "&amp;") in text
    assert 'class="notice"' in text
    assert "<pre>screener run --space Ag-Au-Cu-Pd-Pt --calculator gpaw</pre>" in text

    images = IMG.findall(text)
    assert len(images) == 3  # map, parity, learning curve
    for encoded in images:
        assert base64.b64decode(encoded).startswith(b"\x89PNG\r\n\x1a\n")
    assert "no data yet" not in text

    # strings from data are escaped, never live markup
    assert "<script>" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "&lt;script&gt;evil()&lt;/script&gt;" in text

    # candidate tables: rank, signed energies, std, Miller
    assert "-0.680" in text and "±0.100" in text
    assert "<td>100</td>" in text
    assert '1<span class="ovl">1</span>0' in text
    # cycle table
    assert "10.0" in text and "CO v2, H –" in text
    # EMT results are called what they are: "DFT" only in the notice that they are not
    assert "Parity: prediction before the calculation vs EMT" in text
    assert text.count("DFT") == NOTICE.count("DFT")
    # no stray temporary files
    assert [p.name for p in target.parent.iterdir()] == ["report.html"]


def test_empty_report(empty_data: dict, tmp_path: Path) -> None:
    path = write_report(empty_data, tmp_path / "report.html")
    text = _read(path)
    assert text.startswith("<!DOCTYPE html>")
    assert NOTICE.replace("&", "&amp;") in text
    assert IMG.findall(text) == []
    # map, CO and H candidates, parity, curve, cycles
    assert text.count("no data yet") == 6


def test_missing_and_none_entries(tmp_path: Path) -> None:
    """Keys absent or None: still a valid report, every section 'no data yet'."""
    data = {"title": None, "notice": "n", "surfaces": None, "curve": None}
    text = _read(write_report(data, tmp_path / "r.html"))
    assert text.startswith("<!DOCTYPE html>")
    assert IMG.findall(text) == []
    assert "no data yet" in text


def test_overwrite_is_atomic_replacement(empty_data: dict, tmp_path: Path) -> None:
    path = tmp_path / "report.html"
    write_report(empty_data, path)
    first = path.read_text()
    write_report({**empty_data, "title": "second"}, path)
    second = path.read_text()
    assert first != second and "<title>second</title>" in second
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.html"]


def test_summary(full_data: dict, empty_data: dict) -> None:
    summary = report_summary(full_data)
    lines = summary.splitlines()
    assert 3 <= len(lines) <= 8
    assert "surfaces: 24" in summary
    assert "CO: 2 candidates; top proto:fcc:Pd|100|0.0/top (CuPd 100) dE -0.680 ± 0.100" in summary
    assert "H: 1 candidates" in summary
    assert "cycles: 2, 32 calculations" in summary

    empty = report_summary(empty_data)
    assert "CO: no candidates yet" in empty and "H: no candidates yet" in empty
