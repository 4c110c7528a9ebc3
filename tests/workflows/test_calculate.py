"""The relaxation recipe: EMT in-process, GPAW under MPI, and every failure reason."""

from __future__ import annotations

import json
import math
import pickle
import shutil
import sys

import numpy as np
import pytest
from ase.build import add_adsorbate, bulk, fcc111
from ase.constraints import FixAtoms

from workflows import calculate
from workflows.adsorbates import place_adsorbate
from workflows.calculate import CalculationError, relax
from workflows.profiles import get_profile
from workflows.structures import atoms_from_dict


@pytest.fixture
def co_on_cu():
    """Cu(111) 2x2x3 with CO on top of a surface atom; the two lower layers fixed."""
    slab = fcc111("Cu", (2, 2, 3), a=3.6, vacuum=6.0)
    slab.set_constraint(FixAtoms(indices=[a.index for a in slab if a.tag >= 2]))
    top = next(a for a in slab if a.tag == 1)
    return place_adsorbate(slab, "CO", (top.position + [0.0, 0.0, 1.9]).tolist())


def test_emt_adslab_relaxes_below_fmax_and_keeps_constraints(co_on_cu, tmp_path):
    fixed = [i for i, t in enumerate(co_on_cu.get_tags()) if t >= 2]
    before = co_on_cu.positions.copy()
    result = relax(co_on_cu, "emt", "adslab", workdir=tmp_path)
    assert json.loads(json.dumps(result)) == result
    assert result["converged"] and result["max_force"] < 0.05
    assert result["ionic_steps"] >= 1 and math.isfinite(result["energy"])
    final = atoms_from_dict(result["atoms"])
    assert result["atoms"]["fixed"] == fixed
    assert list(final.get_tags()) == list(co_on_cu.get_tags())
    assert np.allclose(final.positions[fixed], before[fixed])
    assert not np.allclose(final.positions, before)
    assert np.array_equal(co_on_cu.positions, before)  # the input is not modified
    assert result["settings_hash"] == get_profile("emt").settings_hash("adslab", co_on_cu)
    assert result["profile"] == "emt" and result["kind"] == "adslab"
    assert result["magmoms"] is None and "ase" in result["code_versions"]
    assert result["wall_time"] > 0
    assert (tmp_path / calculate.TRAJECTORY).exists()


def test_emt_bulk_relaxes_the_cell(tmp_path):
    strained = bulk("Cu", "fcc", a=3.45, cubic=True)
    result = relax(strained, "emt", "bulk", workdir=tmp_path)
    a = atoms_from_dict(result["atoms"]).cell.lengths()
    assert result["converged"]
    assert np.allclose(a, a[0]) and abs(a[0] - 3.59) < 0.01  # EMT's Cu lattice constant


def test_single_point_with_zero_steps(co_on_cu, tmp_path):
    result = relax(co_on_cu, "emt", "adslab", workdir=tmp_path, max_steps=0)
    assert result["ionic_steps"] == 0 and not result["converged"]
    assert result["settings"]["relax"]["max_steps"] == 0
    assert np.allclose(atoms_from_dict(result["atoms"]).positions, co_on_cu.positions)


def test_too_few_steps_raise_steps_with_last_atoms(co_on_cu, tmp_path):
    co_on_cu.positions[-2:, 2] += 1.0  # CO far above its equilibrium height
    with pytest.raises(CalculationError) as info:
        relax(co_on_cu, "emt", "adslab", workdir=tmp_path, max_steps=2)
    error = info.value
    assert error.reason == "steps" and "2 ionic steps" in error.message
    assert error.last_atoms is not None
    assert list(error.last_atoms.get_tags()) == list(co_on_cu.get_tags())
    assert not np.allclose(error.last_atoms.positions, co_on_cu.positions)
    assert isinstance(error.last_atoms.constraints[0], FixAtoms)


def test_walltime_raises_walltime(co_on_cu, tmp_path):
    with pytest.raises(CalculationError) as info:
        relax(co_on_cu, "emt", "adslab", workdir=tmp_path, walltime=1e-6)
    assert info.value.reason == "walltime" and info.value.last_atoms is not None


def test_overrides_reach_the_relaxation(co_on_cu, tmp_path):
    result = relax(co_on_cu, "emt", "adslab", workdir=tmp_path, overrides={"fmax": 0.2})
    assert result["settings"]["relax"]["fmax"] == 0.2 and result["max_force"] < 0.2
    assert result["overrides"] == {"fmax": 0.2}
    assert result["settings_hash"] == get_profile("emt").settings_hash("adslab", co_on_cu)


def test_uncovered_elements_are_refused(tmp_path):
    with pytest.raises(ValueError, match="does not cover"):
        relax(bulk("Fe", "bcc", a=2.87), "emt", "bulk", workdir=tmp_path)


def test_calculation_error_round_trips(co_on_cu):
    error = CalculationError("no luck", reason="scf", last_atoms=co_on_cu)
    again = CalculationError.from_dict(json.loads(json.dumps(error.to_dict())))
    assert (again.reason, again.message) == ("scf", "no luck")
    assert list(again.last_atoms.get_tags()) == list(co_on_cu.get_tags())
    assert pickle.loads(pickle.dumps(error)).reason == "scf"
    with pytest.raises(ValueError):
        CalculationError("boom", reason="meltdown")


def test_gpaw_command_line():
    one = calculate.gpaw_command(1, "in.json", "out.json")
    assert one[1:] == ["python", "-m", "workflows.gpaw_run", "in.json", "out.json"]
    assert one[0].endswith("gpaw")
    two = calculate.gpaw_command(2, "in.json", "out.json")
    assert two[:4] == ["mpiexec", "--oversubscribe", "-n", "2"] and two[4:] == one
    env = calculate.gpaw_environment()
    assert env["OMPI_ALLOW_RUN_AS_ROOT"] == "1" and env["OMP_NUM_THREADS"] == "1"


CRASHING = """
import sys
from ase.build import bulk
from ase.io import write
write("relax.traj", bulk("Cu", "fcc", a=3.7))
sys.exit(3)
"""


def test_subprocess_dying_without_result_is_a_crash(monkeypatch, tmp_path):
    monkeypatch.setattr(
        calculate, "gpaw_command", lambda ranks, i, o: [sys.executable, "-c", CRASHING]
    )
    with pytest.raises(CalculationError) as info:
        relax(bulk("Cu", "fcc", a=3.6), "gpaw-fast", "bulk", workdir=tmp_path)
    assert info.value.reason == "crash" and "code 3" in info.value.message
    assert info.value.last_atoms.cell.lengths()[0] == pytest.approx(3.7 / 2**0.5)


def _h_on_cu():
    """H in the fcc hollow of a Cu(111) 1x1x2 slab, 0.3 A too high; the bottom atom fixed."""
    slab = fcc111("Cu", (1, 1, 2), a=3.6, vacuum=5.0)
    slab.set_constraint(FixAtoms(indices=[0]))
    add_adsorbate(slab, "H", 1.2, "fcc")
    return slab


def _need_gpaw():
    pytest.importorskip("gpaw")
    if shutil.which("mpiexec") is None:
        pytest.fail("mpiexec missing: run scripts/setup.sh (openmpi-bin)")


@pytest.mark.slow
@pytest.mark.gpaw
def test_gpaw_fast_relaxation_under_mpi(tmp_path):
    _need_gpaw()
    atoms = _h_on_cu()
    result = relax(atoms, "gpaw-fast", "adslab", workdir=tmp_path, ranks=2)
    assert math.isfinite(result["energy"]) and result["ionic_steps"] >= 1
    assert result["converged"] and result["max_force"] < 0.1
    assert result["code_versions"]["gpaw"] and result["ranks"] == 2
    final = atoms_from_dict(result["atoms"])
    assert np.allclose(final.positions[0], atoms.positions[0])
    assert list(final.get_tags()) == list(atoms.get_tags())
    assert final.positions[2, 2] < atoms.positions[2, 2]  # H moved down towards the surface
    assert (tmp_path / "gpaw.txt").exists() and (tmp_path / calculate.TRAJECTORY).exists()


@pytest.mark.slow
@pytest.mark.gpaw
def test_gpaw_scf_failure_is_reported(tmp_path):
    _need_gpaw()
    atoms = _h_on_cu()
    with pytest.raises(CalculationError) as info:
        # the retry ladder's mixer and smearing overrides must be accepted by GPAW
        overrides = {"maxiter": 2, "mixer": {"beta": 0.05, "nmaxold": 5, "weight": 50.0}}
        overrides["smearing"] = 0.2
        relax(atoms, "gpaw-fast", "adslab", workdir=tmp_path, overrides=overrides)
    assert info.value.reason == "scf" and "2 iterations" in info.value.message
    assert np.allclose(info.value.last_atoms.positions, atoms.positions)
