"""Anomaly checks on synthetic Cu(111) adslabs: each flag, and wrapped atoms that did not move."""

from __future__ import annotations

import json

import numpy as np
import pytest
from ase import Atoms
from ase.build import add_adsorbate, fcc111

from workflows.adsorbates import ADSORBATES
from workflows.anomalies import adslab_anomalies, binding_site, slab_anomalies

A_CU = 3.66
CO_HEIGHT = 1.85
TOP = [8, 9, 10, 11]  # top-layer (tag 1) atoms of a 2x2x3 fcc111 slab


def cu_slab(size: tuple[int, int, int] = (2, 2, 3)) -> Atoms:
    return fcc111("Cu", size, a=A_CU, vacuum=6.0)


def co_ontop() -> Atoms:
    """Cu(111) 2x2x3 with CO on top of top-layer atom 8 (C bound, O above)."""
    slab = cu_slab()
    site = slab.positions[TOP[0]] + [0.0, 0.0, CO_HEIGHT]
    return slab + ADSORBATES["CO"].atoms(site)


def h_hollow(site: str = "fcc", size: tuple[int, int, int] = (2, 2, 3)) -> Atoms:
    slab = cu_slab(size)
    add_adsorbate(slab, "H", 1.0, site)
    return slab


def test_fixtures_follow_conventions() -> None:
    adslab = co_ontop()
    assert list(adslab.get_tags()[-2:]) == [0, 0]
    assert adslab.get_chemical_symbols()[-2:] == ["C", "O"]
    assert h_hollow().get_tags()[-1] == 0
    assert set(adslab.get_tags()[TOP]) == {1}


def test_unchanged_has_no_flags() -> None:
    adslab = co_ontop()
    result = adslab_anomalies(adslab, adslab.copy(), max_force=0.02)
    assert result["flags"] == []
    assert result["final_site"] == {
        "binding_atoms": [TOP[0]],
        "site_type": "ontop",
        "binding_elements": ["Cu"],
    }
    assert result["details"]["binding_index"] == 12
    assert result["details"]["binding_distance"] == pytest.approx(CO_HEIGHT)
    json.dumps(result)


def test_co_lifted_is_desorbed() -> None:
    initial = co_ontop()
    final = initial.copy()
    final.positions[-2:, 2] += 4.0
    result = adslab_anomalies(initial, final)
    assert result["flags"] == ["desorbed"]
    assert result["final_site"]["binding_atoms"] == []
    assert result["final_site"]["site_type"] is None
    assert result["details"]["binding_distance"] == pytest.approx(CO_HEIGHT + 4.0)


def test_loosely_bound_h_is_not_desorbed() -> None:
    """1.3 x the radii sum above a Cu atom (as EMT leaves H in a (110) trough) is still bound."""
    initial = h_hollow()
    final = initial.copy()
    top = np.argmax(final.positions[:-1, 2])
    final.positions[-1] = final.positions[top] + [0, 0, 1.3 * (0.31 + 1.32)]
    assert "desorbed" not in adslab_anomalies(initial, final)["flags"]
    final.positions[-1] = final.positions[top] + [0, 0, 1.6 * (0.31 + 1.32)]
    assert "desorbed" in adslab_anomalies(initial, final)["flags"]


def test_co_stretched_is_dissociated() -> None:
    initial = co_ontop()
    final = initial.copy()
    final.positions[-1] = final.positions[-2] + [0.0, 0.0, 2.5]
    result = adslab_anomalies(initial, final)
    assert result["flags"] == ["dissociated"]
    assert result["details"]["max_bond_ratio"] > 1.0


@pytest.mark.parametrize(
    "length,broken", [(1.20, False), (1.40, False), (1.45, True), (1.75, True)]
)
def test_co_bond_is_judged_at_the_sum_of_covalent_radii(length: float, broken: bool) -> None:
    """C-O (0.76 + 0.66 = 1.42 A): a flat CO stretched to 1.45-1.75 A is no longer CO."""
    initial = co_ontop()
    final = initial.copy()
    final.positions[-1] = final.positions[-2] + [length * 0.98, 0.0, length * 0.2]
    flags = adslab_anomalies(initial, final)["flags"]
    assert ("dissociated" in flags) is broken


@pytest.mark.parametrize(
    "length,broken", [(0.97, False), (1.02, False), (1.15, False), (1.3, True)]
)
def test_oh_placed_at_its_radii_sum_is_bonded_until_stretched(length: float, broken: bool) -> None:
    """O-H is placed at 0.97 A, the O + H covalent radii sum: it breaks past 1.25 x that."""
    slab = cu_slab()
    initial = slab + ADSORBATES["OH"].atoms(slab.positions[TOP[0]] + [0.0, 0.0, 1.9])
    final = initial.copy()
    final.positions[-1] = final.positions[-2] + [0.0, 0.0, length]
    assert ("dissociated" in adslab_anomalies(initial, final)["flags"]) is broken


def test_co_dissociated_across_the_boundary() -> None:
    """O wrapped into the cell on the far side: still measured by the minimum image."""
    initial = co_ontop()
    final = initial.copy()
    final.positions[-1] = final.positions[-2] + [0.0, 0.0, 1.16] + final.cell[0]
    assert adslab_anomalies(initial, final)["flags"] == []
    final.positions[-1] += [0.0, 0.0, 1.5]
    assert adslab_anomalies(initial, final)["flags"] == ["dissociated"]


def test_h_fcc_to_hcp_is_migrated() -> None:
    initial = h_hollow("fcc")
    final = h_hollow("hcp")
    result = adslab_anomalies(initial, final)
    assert result["flags"] == ["migrated"]
    # fcc -> neighbouring hcp is ~1.49 A: under move_limit, caught by the site change.
    assert result["details"]["lateral_displacement"] < 1.5
    start = binding_site(initial)
    end = result["final_site"]
    assert start["site_type"] == end["site_type"] == "hollow"
    assert len(end["binding_atoms"]) == 3
    assert end["binding_atoms"] != start["binding_atoms"]
    assert set(end["binding_atoms"]) <= set(TOP)
    assert end["binding_elements"] == ["Cu"] * 3


def test_long_lateral_move_is_migrated() -> None:
    initial = co_ontop()
    final = initial.copy()
    final.positions[-2:, 0] += 2.0
    result = adslab_anomalies(initial, final)
    assert "migrated" in result["flags"]
    assert result["details"]["lateral_displacement"] == pytest.approx(2.0)


@pytest.mark.parametrize("shift", [(1, 0), (0, 1), (1, -1), (-1, -1)])
def test_adsorbate_moved_by_a_cell_vector_is_not_migrated(shift: tuple[int, int]) -> None:
    for initial in (co_ontop(), h_hollow("fcc")):
        final = initial.copy()
        n_ads = int(np.sum(final.get_tags() == 0))
        final.positions[-n_ads:] += shift[0] * final.cell[0] + shift[1] * final.cell[1]
        result = adslab_anomalies(initial, final)
        assert result["flags"] == []
        assert result["details"]["lateral_displacement"] == pytest.approx(0.0, abs=1e-9)
        assert result["final_site"] == binding_site(initial)


def test_adsorbate_placed_too_high_that_came_down_is_not_migrated() -> None:
    final = co_ontop()
    initial = final.copy()
    initial.positions[-2:, 2] += 1.5  # C-Cu 3.35 A: beyond the 3.12 A reach of any bond
    assert binding_site(initial)["binding_atoms"] == []
    assert adslab_anomalies(initial, final)["flags"] == []


def test_top_atom_displaced_is_reconstructed() -> None:
    initial = co_ontop()
    final = initial.copy()
    final.positions[TOP[3], 2] -= 0.8
    result = adslab_anomalies(initial, final)
    assert result["flags"] == ["reconstructed"]
    assert result["details"]["moved_atom"] == TOP[3]
    assert result["details"]["max_slab_displacement"] == pytest.approx(0.8)


def test_wrapped_slab_atom_is_not_reconstructed() -> None:
    initial = co_ontop()
    final = initial.copy()
    final.positions[TOP[1]] -= final.cell[0]
    final.positions[2] += final.cell[0] + final.cell[1]
    result = adslab_anomalies(initial, final)
    assert result["flags"] == []
    assert result["details"]["max_slab_displacement"] == pytest.approx(0.0, abs=1e-9)


def test_whole_adslab_wrapped_has_no_flags() -> None:
    initial = co_ontop()
    final = initial.copy()
    final.positions[:, :2] += [3.1, 1.7]
    initial_shifted = final.copy()
    final.wrap()
    assert adslab_anomalies(initial_shifted, final)["flags"] == []


def test_high_force() -> None:
    adslab = co_ontop()
    assert adslab_anomalies(adslab, adslab.copy(), max_force=0.7)["flags"] == ["high_force"]
    assert adslab_anomalies(adslab, adslab.copy(), max_force=0.3)["flags"] == []
    relaxed = adslab_anomalies(adslab, adslab.copy(), max_force=0.7, force_limit=1.0)
    assert relaxed["flags"] == []


def test_flags_are_sorted_and_combined() -> None:
    initial = co_ontop()
    final = initial.copy()
    final.positions[-2:, 2] += 4.0
    final.positions[-1, 2] += 2.0
    final.positions[TOP[2], 0] += 0.9
    result = adslab_anomalies(initial, final, max_force=0.9)
    assert result["flags"] == ["desorbed", "dissociated", "high_force", "reconstructed"]


def test_bare_slab_comparison() -> None:
    slab_initial = cu_slab()
    slab_final = slab_initial.copy()
    slab_final.positions[TOP[2], 0] += 0.6  # the bare slab reconstructed during its relaxation
    initial = slab_final + ADSORBATES["CO"].atoms(slab_final.positions[TOP[0]] + [0, 0, 1.85])
    final = initial.copy()
    assert adslab_anomalies(initial, final)["flags"] == []
    via_adslab = adslab_anomalies(initial, final, slab_initial=slab_initial)
    assert via_adslab["flags"] == ["reconstructed"]
    assert via_adslab["details"]["bare_slab_displacement"] == pytest.approx(0.6)
    explicit = adslab_anomalies(initial, final, slab_initial=slab_initial, slab_final=slab_final)
    assert explicit["flags"] == ["reconstructed"]
    unchanged = adslab_anomalies(
        initial, final, slab_initial=slab_final.copy(), slab_final=slab_final.copy()
    )
    assert unchanged["flags"] == []


def test_slab_anomalies() -> None:
    initial = cu_slab()
    final = initial.copy()
    assert slab_anomalies(initial, final) == {
        "flags": [],
        "details": {"max_displacement": 0.0, "moved_atom": 0},
    }
    final.positions[5] += final.cell[1]
    assert slab_anomalies(initial, final)["flags"] == []
    final.positions[TOP[0], 1] += 0.55
    result = slab_anomalies(initial, final, max_force=0.5)
    assert result["flags"] == ["high_force", "reconstructed"]
    assert result["details"]["moved_atom"] == TOP[0]
    assert slab_anomalies(initial, final, reconstruct_limit=0.6)["flags"] == []


def test_binding_sites() -> None:
    assert binding_site(co_ontop())["site_type"] == "ontop"
    fcc = binding_site(h_hollow("fcc"))
    assert fcc["site_type"] == "hollow" and len(fcc["binding_atoms"]) == 3
    bridge = cu_slab()
    add_adsorbate(bridge, "H", 1.2, "bridge")
    site = binding_site(bridge)
    assert site["site_type"] == "bridge" and len(site["binding_atoms"]) == 2
    with pytest.raises(ValueError):
        binding_site(co_ontop(), binding_index=0)


def test_h_held_far_out_stays_bound_and_its_site_is_tracked() -> None:
    """EMT leaves H 2.2-2.3 A from hollow atoms (past 1.25 x the radii sum, 2.04 A): bound to the
    hollow (the relative part of the adsorbate rule), so not desorbed, and a move to the
    neighbouring hcp hollow at that height is a site change."""
    height = float(np.sqrt(2.25**2 - (A_CU / np.sqrt(6)) ** 2))  # 2.25 A from the three atoms
    initial, final = h_hollow("fcc"), h_hollow("hcp")
    for adslab in (initial, final):
        adslab.positions[-1, 2] = adslab.positions[TOP[0], 2] + height
    site = binding_site(initial)
    assert site["site_type"] == "hollow" and len(site["binding_atoms"]) == 3
    result = adslab_anomalies(initial, initial.copy())
    assert result["flags"] == []
    assert result["details"]["binding_distance"] == pytest.approx(2.25)
    assert adslab_anomalies(initial, final)["flags"] == ["migrated"]


def test_binding_site_counts_periodic_images_in_a_small_cell() -> None:
    """In a 1x1 cell a hollow's three Cu atoms are one atom and two of its images."""
    site = binding_site(h_hollow("fcc", size=(1, 1, 3)))
    assert site == {"binding_atoms": [2], "site_type": "hollow", "binding_elements": ["Cu"]}


def test_mismatched_structures_are_rejected() -> None:
    adslab = co_ontop()
    with pytest.raises(ValueError):
        adslab_anomalies(adslab, adslab[:-1])
    with pytest.raises(ValueError):
        adslab_anomalies(cu_slab(), cu_slab())
