"""Calculator profiles: settings per kind and system, their hashes, spin, k-points, coverage."""

from __future__ import annotations

import json

import pytest
from ase.build import bulk, fcc111, molecule

from workflows.calculate import apply_overrides
from workflows.profiles import KINDS, PROFILES, code_versions, get_profile


@pytest.fixture
def cu_slab():
    return fcc111("Cu", (2, 2, 3), a=3.6, vacuum=6.0)


def test_settings_are_json_and_hash_is_stable(cu_slab):
    for profile in PROFILES.values():
        for kind in KINDS:
            settings = profile.settings(kind, cu_slab)
            assert json.loads(json.dumps(settings)) == settings
            digest = profile.settings_hash(kind, cu_slab)
            assert len(digest) == 12 and int(digest, 16) >= 0
            assert digest == profile.settings_hash(kind, cu_slab.copy())


def test_hash_differs_across_kinds_and_profiles(cu_slab):
    hashes = {(p, k): PROFILES[p].settings_hash(k, cu_slab) for p in PROFILES for k in KINDS}
    assert len(set(hashes.values())) == len(hashes)


def test_hash_follows_the_system():
    gpaw = get_profile("gpaw")
    small = fcc111("Cu", (1, 1, 3), a=3.6, vacuum=6.0)
    large = fcc111("Cu", (4, 4, 3), a=3.6, vacuum=6.0)
    assert gpaw.settings_hash("slab", small) != gpaw.settings_hash("slab", large)


def test_production_gpaw_settings(cu_slab):
    gpaw = get_profile("gpaw")
    cu = bulk("Cu", "fcc", a=3.6, cubic=True)
    b = gpaw.settings("bulk", cu)
    s = gpaw.settings("slab", cu_slab)
    g = gpaw.settings("gas", molecule("CO", vacuum=5.0))
    assert b["xc"] == s["xc"] == g["xc"] == "RPBE"
    assert b["mode"] == {"name": "pw", "ecut": 500.0}
    assert s["mode"]["ecut"] == g["mode"]["ecut"] == 350.0
    assert b["occupations"] == {"name": "fermi-dirac", "width": 0.1}
    assert s["occupations"]["width"] == 0.1 and g["occupations"]["width"] == 0.01
    assert b["relax"]["relax_cell"] and b["relax"]["cell_filter"] == "FrechetCellFilter"
    assert not s["relax"]["relax_cell"] and s["relax"]["cell_filter"] is None
    assert s["relax"]["fmax"] == 0.05 and s["relax"]["max_steps"] == 200
    assert get_profile("gpaw-fast").settings("slab", cu_slab)["relax"]["fmax"] == 0.1
    assert get_profile("emt").settings("bulk", cu) == {
        "calculator": "emt",
        "relax": get_profile("emt").relax_settings("bulk"),
    }


def test_spin_for_magnetic_elements_only():
    gpaw = get_profile("gpaw")
    ni = gpaw.settings("bulk", bulk("Ni", "fcc", a=3.52))
    assert ni["spinpol"] is True and ni["magmoms"] == {"Ni": 0.6}
    feco = gpaw.settings("bulk", bulk("Fe", "bcc", a=2.87) * (2, 1, 1))
    assert feco["spinpol"] and feco["magmoms"] == {"Fe": 2.0}
    cu = gpaw.settings("bulk", bulk("Cu", "fcc", a=3.6))
    assert cu["spinpol"] is False and cu["magmoms"] == {}
    co_on_cu = fcc111("Cu", (2, 2, 3), a=3.6, vacuum=6.0) + molecule("CO")
    assert gpaw.settings("adslab", co_on_cu)["spinpol"] is False


def test_kpoints_scale_with_the_cell():
    gpaw = get_profile("gpaw")

    def kpts(kind, atoms):
        return gpaw.settings(kind, atoms)["kpts"]["size"]

    assert kpts("bulk", bulk("Cu", "fcc", a=3.6, cubic=True)) == [10, 10, 10]
    assert kpts("bulk", bulk("Cu", "fcc", a=3.66, cubic=True)) == [10, 10, 10]
    assert kpts("bulk", bulk("Cu", "fcc", a=3.6) * (2, 2, 2)) == [9, 9, 9]
    assert kpts("bulk", bulk("Cu", "fcc", a=3.6, cubic=True) * (2, 1, 1)) == [5, 10, 10]
    assert kpts("slab", fcc111("Cu", (2, 2, 3), a=3.6, vacuum=6.0)) == [4, 4, 1]
    assert kpts("slab", fcc111("Cu", (1, 1, 3), a=3.6, vacuum=6.0)) == [8, 8, 1]
    assert kpts("slab", fcc111("Cu", (4, 2, 3), a=3.6, vacuum=6.0)) == [2, 4, 1]
    assert kpts("gas", molecule("H2", vacuum=5.0)) == [1, 1, 1]
    fast = get_profile("gpaw-fast").settings("slab", fcc111("Cu", (2, 2, 3), a=3.6, vacuum=6))
    assert fast["kpts"]["size"] == [2, 2, 1]


def test_unknown_profile_and_kind():
    with pytest.raises(ValueError) as info:
        get_profile("vasp")
    assert str(info.value) == "unknown calculator profile 'vasp' (known: emt, gpaw, gpaw-fast)"
    with pytest.raises(ValueError, match="unknown calculation kind 'surface'"):
        get_profile("emt").settings("surface", bulk("Cu"))


def test_coverage():
    cu_co = fcc111("Cu", (2, 2, 3), a=3.6, vacuum=6.0) + molecule("CO")
    fe = bulk("Fe", "bcc", a=2.87)
    assert get_profile("emt").covers(cu_co)
    assert not get_profile("emt").covers(fe)
    assert get_profile("gpaw").covers(fe) and get_profile("gpaw-fast").covers(fe)


def test_overrides(cu_slab):
    base = get_profile("gpaw").settings("slab", cu_slab)
    new = apply_overrides(
        base,
        {
            "mixer": {"beta": 0.025, "nmaxold": 5, "weight": 50},
            "smearing": 0.2,
            "maxiter": 500,
            "convergence": {"density": 1e-3},
            "fmax": 0.03,
            "optimizer": "FIRE",
        },
    )
    assert new["mixer"] == {"beta": 0.025, "nmaxold": 5, "weight": 50}
    assert new["occupations"] == {"name": "fermi-dirac", "width": 0.2}
    assert new["maxiter"] == 500 and new["convergence"] == {"density": 1e-3}
    assert new["relax"]["fmax"] == 0.03 and new["relax"]["optimizer"] == "FIRE"
    assert base["mixer"] is None and base["occupations"]["width"] == 0.1  # not modified
    with pytest.raises(ValueError, match="unknown override 'beta'"):
        apply_overrides(base, {"beta": 0.1})
    with pytest.raises(ValueError, match="unknown optimizer"):
        apply_overrides(base, {"optimizer": "MDMin"})
    emt = get_profile("emt").settings("slab", cu_slab)
    assert apply_overrides(emt, {"smearing": 0.2, "mixer": {"beta": 0.02}}) == emt  # ignored
    assert apply_overrides(emt, {"max_steps": 5})["relax"]["max_steps"] == 5


def test_code_versions():
    versions = code_versions()
    assert {"python", "ase", "numpy"} <= set(versions)
    assert all(isinstance(v, str) for v in versions.values())
