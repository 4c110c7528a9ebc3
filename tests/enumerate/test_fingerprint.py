"""The coordination fingerprint, from binding atoms and from an adsorbate+slab (one code path)."""

from __future__ import annotations

import numpy as np
import pytest
from ase.build import add_adsorbate, fcc100, fcc111

from screener.enumerate.bulks import prototype_bulks
from screener.enumerate.fingerprint import (
    binding_atoms,
    fingerprint_from_binding,
    fingerprint_of_adslab,
)
from screener.enumerate.pipeline import adsorbate_position, enumerate_bulk
from screener.enumerate.sites import find_sites
from screener.enumerate.slabs import SlabParams
from workflows.adsorbates import place_adsorbate
from workflows.anomalies import binding_site
from workflows.structures import atoms_from_dict, atoms_to_dict


def _counts(shell):
    return {row[0]: row[3] for row in shell}


@pytest.mark.parametrize(
    "builder,expected",
    [
        (fcc111, {"ontop": 9, "bridge": 18, "fcc": 27, "hcp": 27}),
        (fcc100, {"ontop": 8, "bridge": 16, "4-fold": 32}),
    ],
)
def test_second_shell_counts_bonds_of_first_shell_atoms(builder, expected):
    slab = builder("Cu", size=(2, 2, 4), vacuum=10.0, a=3.61)
    for site in find_sites(slab):
        fp = fingerprint_from_binding(slab, site.binding)
        assert _counts(fp["first"]) == {"Cu": len(site.binding)}
        assert _counts(fp["second"]) == {"Cu": expected[site.site_type]}
        assert fp["first"][0][1:3] == [29, 1.9]  # Z and Pauling electronegativity


@pytest.mark.parametrize("adsorbate", ["CO", "H"])
@pytest.mark.parametrize("builder", [fcc111, fcc100])
def test_placed_adsorbate_bonds_to_exactly_the_site_atoms(builder, adsorbate):
    """On flat surfaces the placement realises the geometric site: same binding atoms."""
    slab = builder("Pd", size=(2, 2, 4), vacuum=10.0)
    for site in find_sites(slab):
        adslab = place_adsorbate(slab, adsorbate, adsorbate_position(slab, site, adsorbate))
        assert binding_atoms(adslab) == sorted(site.binding)
        point = adsorbate_position(slab, site, adsorbate)
        # in a 2x2 cell the same three atoms make an fcc and an hcp hollow: the zones need
        # the adsorbate's position to tell which images form the site
        assert fingerprint_of_adslab(adslab) == fingerprint_from_binding(
            slab, site.binding, point=point
        )


def _pt111_with_o(size: tuple[int, int, int], site: str):
    """Pt(111) with an O atom (tagged 0) on a top (1.9 A up) or hollow (1.2 A up) site."""
    slab = fcc111("Pt", size=size, a=3.92, vacuum=8.0)
    add_adsorbate(slab, "O", 1.9 if site == "ontop" else 1.2, site)
    slab.set_tags([*slab.get_tags()[:-1], 0])
    return slab


def test_zones_tell_where_the_neighbours_sit():
    """Pt(111) in 2x2, 3x3 and 4x4 cells: zone sizes of top, bridge, fcc and hcp sites, hcp and
    fcc told apart; under a top site the third layer holds 6 atoms bonded to the 3 below it, 3
    of them (under the hollows around the site) bonded to two."""
    expected = {
        "ontop": (1, 6, 3, 12, 0, 0, 6, 6, 3),
        "bridge": (2, 8, 5, 14, 2, 1, 8, 9, 5),
        "fcc": (3, 9, 6, 15, 3, 3, 9, 10, 7),
        "hcp": (3, 9, 7, 15, 3, 1, 9, 12, 6),
    }
    for size in ((3, 3, 4), (2, 2, 4), (4, 4, 4)):
        for site, sizes in expected.items():
            zones = fingerprint_of_adslab(_pt111_with_o(size, site))["zones"]
            assert tuple(sum(zones[z].values()) for z in zones) == sizes, (size, site)
            assert set(zones["ring"]) == {"Pt"}


def test_bond_counts_say_which_element_touches_which():
    """Pt(111): bonds of a top and an fcc site in any cell size (a binding atom has 6 bonds in
    its layer and 3 below; the ring of a top site is a hexagon, that of a hollow a loop of 9);
    a Ru binding atom's bonds are "Ru-Pt", those of the Pt binding atoms to it "Pt-Ru"."""
    pure = {
        "ontop": {"binding_ring": 6, "binding_below": 3, "ring_ring": 6, "binding_binding": 0},
        "fcc": {"binding_ring": 12, "binding_below": 9, "ring_ring": 9, "binding_binding": 3},
    }
    for size in ((2, 2, 4), (3, 3, 4), (4, 4, 4)):
        for site, counts in pure.items():
            bonds = fingerprint_of_adslab(_pt111_with_o(size, site))["bonds"]
            assert {k: sum(v.values()) for k, v in bonds.items()} == counts, (size, site)
    slab = _pt111_with_o((4, 4, 4), "fcc")
    site = binding_atoms(slab)
    slab[site[0]].symbol = "Ru"
    bonds = fingerprint_of_adslab(slab)["bonds"]
    assert bonds["binding_binding"] == {"Pt-Pt": 1, "Pt-Ru": 2}
    assert bonds["binding_ring"] == {"Pt-Pt": 8, "Ru-Pt": 4}  # Ru's 2 bonds to Pt binding
    # atoms are binding-binding pairs, not ring bonds
    assert bonds["binding_below"] == {"Pt-Pt": 6, "Ru-Pt": 3}


def test_third_layer_under_a_top_site():
    """A Ru in the third layer, under a hollow next to a Pt(111) top site, is counted in
    ``below2_shared`` and ``below2``; the zones above it do not change."""
    slab = _pt111_with_o((4, 4, 4), "ontop")
    top = binding_atoms(slab)[0]
    tags = slab.get_tags()
    lateral = {
        i: float(np.linalg.norm(slab.get_distance(top, i, mic=True, vector=True)[:2]))
        for i in range(len(slab) - 1)
        if tags[i] == 3
    }
    near = min(lateral, key=lateral.get)
    plain = fingerprint_of_adslab(slab)
    slab[near].symbol = "Ru"
    fp = fingerprint_of_adslab(slab)
    assert fp["zones"]["below2_shared"] == {"Pt": 2, "Ru": 1}
    assert fp["zones"]["below2"] == {"Pt": 5, "Ru": 1}
    assert {z: fp["zones"][z] for z in ("binding", "ring", "below", "ring2")} == {
        z: plain["zones"][z] for z in ("binding", "ring", "below", "ring2")
    }


@pytest.mark.parametrize("adsorbate", ["CO", "H"])
def test_enumerated_fingerprints_come_from_the_placed_adsorbate(adsorbate):
    cu3pd = next(s for s in prototype_bulks(["Cu", "Pd"]) if s.key == "proto:L1_2:Cu3Pd")
    result = enumerate_bulk(atoms_to_dict(cu3pd.atoms), [adsorbate], SlabParams(max_miller=1))
    checked = 0
    for surface in result["surfaces"]:
        slab = atoms_from_dict(surface["structure"])
        for row in surface["sites"]:
            adslab = place_adsorbate(slab, adsorbate, row["adsorbate_position"])
            assert row["fingerprint"] == fingerprint_of_adslab(adslab)
            # nothing sits nearer the adsorbate than the farthest of its binding atoms
            d = adslab.get_distances(len(slab), list(range(len(slab))), mic=True)
            others = [x for i, x in enumerate(d) if i not in row["binding_atoms"]]
            assert min(others) >= d[row["binding_atoms"]].max() - 0.1 - 1e-9
            checked += 1
    assert checked > 20


@pytest.mark.parametrize(
    "site,height,expected",
    [("ontop", 2.1, 1), ("bridge", 1.75, 2), ("fcc", 1.5, 3), ("hcp", 1.5, 3)],
)
def test_binding_atoms_of_an_adsorbate_held_far_out(site, height, expected):
    """EMT relaxes H to 2.2-2.3 A from bridge and hollow atoms (beyond 1.25 x the radii sum,
    2.04 A for Cu-H): the relative rule still finds the site's atoms, and no more."""
    slab = fcc111("Cu", size=(2, 2, 4), vacuum=10.0, a=3.61)
    slab.set_tags(1)
    add_adsorbate(slab, "H", height, site)
    tags = slab.get_tags()
    tags[-1] = 0
    slab.set_tags(tags)
    d = slab.get_distances(len(slab) - 1, list(range(len(slab) - 1)), mic=True)
    assert d.min() > 2.04  # beyond the absolute cutoff for every site
    bound = binding_atoms(slab)
    assert len(bound) == expected
    assert d[bound].max() <= 1.15 * d.min() + 1e-9
    # one bonding rule (workflows.bonding): the anomaly checks see the same site
    assert binding_site(slab)["binding_atoms"] == bound


def test_desorbed_adsorbate_binds_nothing():
    """Past 1.5 x the radii sum of its nearest surface atom the adsorbate is bonded to none."""
    slab = fcc111("Cu", size=(2, 2, 4), vacuum=10.0, a=3.61)
    slab.set_tags(1)
    add_adsorbate(slab, "H", 1.45 * (0.31 + 1.32), "ontop")
    tags = slab.get_tags()
    tags[-1] = 0
    slab.set_tags(tags)
    assert len(binding_atoms(slab)) == 1
    slab.positions[-1, 2] += 0.1 * (0.31 + 1.32)
    assert binding_atoms(slab) == [] == binding_site(slab)["binding_atoms"]


def test_adslab_without_adsorbate_is_rejected():
    slab = fcc111("Cu", size=(2, 2, 3), vacuum=10.0)
    slab.set_tags(1)
    with pytest.raises(ValueError, match="tagged 0"):
        fingerprint_of_adslab(slab)


@pytest.mark.parametrize("size", [(2, 2, 4), (4, 4, 4)])
def test_coordination_numbers_do_not_depend_on_the_cell(size):
    """fcc(111): top-layer CN 9, second layer 12; a site's bonds among its own atoms excluded."""
    slab = fcc111("Cu", size=size, vacuum=10.0, a=3.61)
    expected = {  # binding CNs, second-shell CN sum, second-shell atoms
        "ontop": ([9], 6 * 9 + 3 * 12, 9),
        "bridge": ([9, 9], 2 * (5 * 9 + 3 * 12), 16),
        "fcc": ([9, 9, 9], 3 * (4 * 9 + 3 * 12), 21),
        "hcp": ([9, 9, 9], 3 * (4 * 9 + 3 * 12), 21),
    }
    seen = set()
    for site in find_sites(slab):
        cn = fingerprint_from_binding(slab, site.binding)["cn"]
        binding, total, n = expected[site.site_type]
        assert (cn["binding"], cn["second_sum"], cn["second_n"]) == (binding, total, n)
        seen.add(site.site_type)
    assert seen == set(expected)


def test_fcc100_coordination_numbers():
    slab = fcc100("Cu", size=(2, 2, 4), vacuum=10.0, a=3.61)
    cns = {s.site_type: fingerprint_from_binding(slab, s.binding)["cn"] for s in find_sites(slab)}
    assert cns["ontop"] == {"binding": [8], "second_sum": 4 * 8 + 4 * 12, "second_n": 8}
    # 4-fold hollow: its four atoms are bonded around the square (no diagonal bonds)
    assert cns["4-fold"]["binding"] == [8, 8, 8, 8]
    assert cns["4-fold"]["second_n"] == 4 * (8 - 2)
