"""Slab conventions: thickness, width, atom limit, vacuum, tags, fixed atoms, terminations."""

from __future__ import annotations

import numpy as np
import pytest

from screener.enumerate.bulks import elemental_bulk, prototype_bulks
from screener.enumerate.slabs import SlabParams, _shortest_vector, make_slabs


@pytest.fixture(scope="module")
def cupd_b2_slabs():
    spec = next(s for s in prototype_bulks(["Cu", "Pd"]) if s.prototype == "B2")
    return make_slabs(spec.atoms, SlabParams(max_miller=2))


def test_fcc_miller_indices_up_to_two():
    records, skipped = make_slabs(elemental_bulk("Cu"), SlabParams(max_miller=2))
    assert sorted({r.miller for r in records}) == [
        (1, 0, 0),
        (1, 1, 0),
        (1, 1, 1),
        (2, 1, 0),
        (2, 1, 1),
        (2, 2, 1),
    ]
    assert not skipped


def test_slab_geometry_follows_the_settings(cupd_b2_slabs):
    params = SlabParams()
    records, _ = cupd_b2_slabs
    assert records
    for record in records:
        atoms = record.atoms
        z = atoms.positions[:, 2]
        cell = atoms.cell.array
        assert record.thickness >= params.min_thickness - 1e-6
        assert len(atoms) <= params.max_atoms
        assert _shortest_vector(cell[0, :2], cell[1, :2]) >= params.min_width - 1e-6
        assert np.allclose(cell[2, :2], 0) and np.allclose(cell[:2, 2], 0)
        assert z.min() == pytest.approx(params.vacuum, abs=1e-6)
        assert cell[2, 2] - z.max() == pytest.approx(params.vacuum, abs=1e-6)
        tags = atoms.get_tags()
        assert tags[np.argmax(z)] == 1 and tags.min() == 1
        fixed = set(atoms.constraints[0].get_indices().tolist())
        assert fixed == {i for i in range(len(atoms)) if z[i] < z.max() - params.fix_below - 1e-6}


def test_both_faces_of_a_polar_stacking_are_terminations(cupd_b2_slabs):
    records, _ = cupd_b2_slabs
    tops = {tuple(sorted(r.top_composition())) for r in records if r.miller == (1, 0, 0)}
    assert tops == {("Cu",), ("Pd",)}


def test_symmetric_slab_is_not_flipped():
    records, _ = make_slabs(elemental_bulk("Pt"), SlabParams(max_miller=1))
    assert all(r.side == "top" for r in records)


def test_atom_limit_skips_with_a_reason():
    records, skipped = make_slabs(elemental_bulk("Cu"), SlabParams(max_miller=2, max_atoms=30))
    assert all(len(r.atoms) <= 30 for r in records)
    assert skipped and all("> max 30" in s.reason for s in skipped)
