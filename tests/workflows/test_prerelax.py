"""EMT pre-relaxation before GPAW: only where EMT covers the elements, only slabs and adslabs."""

from __future__ import annotations

import numpy as np
from ase.build import add_adsorbate, bcc110, fcc111
from ase.constraints import FixAtoms

from workflows.tasks import emt_prerelax


def _cu_co():
    slab = fcc111("Cu", size=(2, 2, 3), vacuum=10.0)
    slab.set_constraint(FixAtoms(mask=slab.get_tags() == 3))
    add_adsorbate(slab, "C", 2.3, "ontop")  # a little high: EMT pulls it in
    return slab


def test_prerelax_moves_a_gpaw_adslab_with_emt(tmp_path):
    atoms = _cu_co()
    start, summary = emt_prerelax(atoms, "gpaw-fast", "adslab", workdir=tmp_path)
    assert summary is not None and summary["ionic_steps"] >= 1
    assert not np.allclose(start.positions, atoms.positions)
    fixed = atoms.get_tags() == 3
    assert np.allclose(start.positions[fixed], atoms.positions[fixed])


def test_prerelax_is_skipped_where_it_does_not_apply(tmp_path):
    atoms = _cu_co()
    for profile, kind in (("emt", "adslab"), ("gpaw", "bulk"), ("gpaw", "gas")):
        start, summary = emt_prerelax(atoms, profile, kind, workdir=tmp_path)
        assert summary is None and start is atoms
    iron = bcc110("Fe", size=(2, 2, 3), vacuum=10.0)
    assert emt_prerelax(iron, "gpaw", "slab", workdir=tmp_path) == (iron, None)
