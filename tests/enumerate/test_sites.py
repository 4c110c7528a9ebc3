"""The site finder on surfaces whose sites are known."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from ase.build import bcc100, fcc100, fcc111, fcc211, hcp0001

from screener.enumerate.bulks import elemental_bulk, prototype_bulks
from screener.enumerate.sites import find_sites, surface_atoms
from screener.enumerate.slabs import SlabParams, make_slabs


def _types(sites) -> Counter:
    return Counter(s.site_type for s in sites)


def _slab(bulk, miller):
    records, _ = make_slabs(bulk, SlabParams(max_miller=max(miller)))
    return [r for r in records if r.miller == miller]


def test_fcc111_has_one_site_of_each_kind():
    slab = fcc111("Cu", size=(2, 2, 4), vacuum=10.0, a=3.61)
    sites = find_sites(slab)
    assert _types(sites) == {"ontop": 1, "bridge": 1, "fcc": 1, "hcp": 1}
    multiplicity = {s.site_type: s.multiplicity for s in sites}
    assert multiplicity == {"ontop": 4, "bridge": 12, "fcc": 4, "hcp": 4}


def test_fcc111_hollows_are_told_apart_by_the_second_layer():
    slab = fcc111("Pt", size=(2, 2, 4), vacuum=10.0)
    tags = slab.get_tags()
    second = slab.positions[tags == 2]
    cell = slab.cell.array[:2, :2]
    for site in find_sites(slab):
        if site.site_type not in ("fcc", "hcp"):
            continue
        delta = (second[:, :2] - site.position[:2]) @ np.linalg.inv(cell)
        delta -= np.round(delta)
        lateral = np.linalg.norm(delta @ cell, axis=1).min()
        assert (lateral < 0.3) == (site.site_type == "hcp")


def test_stepped_fcc211_terrace_has_both_hollows():
    """The (111) terrace of a (211) step is three rows wide: two fcc and two hcp hollows."""
    (s211,) = _slab(elemental_bulk("Cu"), (2, 1, 1))
    hollows = _types(find_sites(s211.atoms))
    assert (hollows["fcc"], hollows["hcp"]) == (2, 2)


def test_fcc100_has_ontop_bridge_and_fourfold():
    sites = find_sites(fcc100("Cu", size=(2, 2, 4), vacuum=10.0, a=3.61))
    assert _types(sites) == {"ontop": 1, "bridge": 1, "4-fold": 1}
    fourfold = next(s for s in sites if s.site_type == "4-fold")
    assert len(fourfold.binding) == 4


def test_generated_fcc_slabs_agree_with_ase_builders():
    cu = elemental_bulk("Cu")
    (s111,) = _slab(cu, (1, 1, 1))
    (s100,) = _slab(cu, (1, 0, 0))
    assert _types(find_sites(s111.atoms)) == {"ontop": 1, "bridge": 1, "fcc": 1, "hcp": 1}
    assert _types(find_sites(s100.atoms)) == {"ontop": 1, "bridge": 1, "4-fold": 1}


def test_hcp0001_and_bcc100():
    hcp = find_sites(hcp0001("Ru", size=(2, 2, 4), vacuum=10.0))
    assert _types(hcp) == {"ontop": 1, "bridge": 1, "fcc": 1, "hcp": 1}
    bcc = find_sites(bcc100("Fe", size=(2, 2, 5), vacuum=10.0))
    assert _types(bcc) == {"ontop": 1, "bridge": 1, "4-fold": 1}


def test_sites_do_not_depend_on_vacuum():
    def signature(vacuum):
        slab = fcc111("Cu", size=(2, 2, 4), vacuum=vacuum, a=3.61)
        slab.positions[:, 2] -= slab.positions[:, 2].min()
        return sorted((s.site_type, s.multiplicity) for s in find_sites(slab))

    assert signature(7.0) == signature(10.0) == signature(15.0)


def test_only_top_side_atoms_bind():
    for record in _slab(elemental_bulk("Cu"), (2, 1, 1)) + _slab(elemental_bulk("Cu"), (1, 1, 0)):
        z = record.atoms.positions[:, 2]
        middle = (z.max() + z.min()) / 2
        for site in find_sites(record.atoms):
            assert all(z[i] > middle for i in site.binding)
            assert site.position[2] > middle


def test_alloy_sites_carry_their_composition():
    cu3pd = next(s for s in prototype_bulks(["Cu", "Pd"]) if s.key == "proto:L1_2:Cu3Pd")
    (s111,) = _slab(cu3pd.atoms, (1, 1, 1))
    sites = find_sites(s111.atoms)
    symbols = s111.atoms.get_chemical_symbols()
    ontop = sorted(symbols[s.binding[0]] for s in sites if s.site_type == "ontop")
    assert ontop == ["Cu", "Pd"]
    # every orbit together covers each surface atom exactly once
    top = surface_atoms(s111.atoms)
    assert sum(s.multiplicity for s in sites if s.site_type == "ontop") == len(top)


@pytest.mark.parametrize("prototype", ["proto:B2:CuPd", "proto:L1_0:CuPd", "proto:L1_2:CuPd3"])
def test_orbits_partition_the_candidates(prototype):
    """Multiplicities of one type add up to a whole number of cells' worth of sites."""
    spec = next(s for s in prototype_bulks(["Cu", "Pd"]) if s.key == prototype)
    records, _ = make_slabs(spec.atoms, SlabParams(max_miller=1))
    for record in records:
        sites = find_sites(record.atoms)
        n_top = len(surface_atoms(record.atoms))
        assert sum(s.multiplicity for s in sites if s.site_type == "ontop") == n_top
        assert all(s.multiplicity >= 1 for s in sites)


@pytest.mark.parametrize(
    "builder,sizes",
    [(fcc111, [(2, 2, 4), (3, 3, 4)]), (fcc211, [(3, 2, 4), (3, 3, 4), (6, 2, 4)])],
)
def test_sites_do_not_depend_on_the_cell(builder, sizes):
    """Surface atoms, site kinds and the hcp/fcc labels come out the same in small and large
    cells (periodic images from workflows.bonding, however many fit in the cell)."""
    kinds = []
    for size in sizes:
        slab = builder("Cu", size, a=3.61, vacuum=10.0)
        sites = find_sites(slab)
        top = surface_atoms(slab)
        assert sum(s.multiplicity for s in sites if s.site_type == "ontop") == len(top)
        kinds.append(sorted(_types(sites).items()))
    assert all(k == kinds[0] for k in kinds)
