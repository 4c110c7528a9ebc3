"""A real GPAW calculation at tiny settings, serial and under MPI (checks the build and the MPI
launch recipe that the DFT workflows use: ``mpiexec -n N gpaw python script.py``)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from workflows.calculate import gpaw_environment

pytestmark = [pytest.mark.slow, pytest.mark.gpaw]

SCRIPT = """
import json, sys
from ase.build import bulk
from gpaw import GPAW, PW
from gpaw.mpi import world
energies = {}
for a in (3.3, 3.6):
    atoms = bulk("Cu", "fcc", a=a)
    atoms.calc = GPAW(mode=PW(200), xc="RPBE", kpts=(3, 3, 3), occupations={"name": "fermi-dirac",
                      "width": 0.1}, txt=None, symmetry="off")
    energies[a] = atoms.get_potential_energy()
if world.rank == 0:
    json.dump({"energies": energies, "size": world.size}, open(sys.argv[1], "w"))
"""


def _run(tmp_path: Path, ranks: int) -> dict:
    script = tmp_path / "cu.py"
    script.write_text(SCRIPT)
    out = tmp_path / f"out{ranks}.json"
    gpaw = str(Path(sys.executable).with_name("gpaw"))
    cmd = [gpaw, "python", str(script), str(out)]
    if ranks > 1:
        cmd = ["mpiexec", "--oversubscribe", "-n", str(ranks), *cmd]
    proc = subprocess.run(cmd, env=gpaw_environment(), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(out.read_text())


def test_gpaw_cu_bulk_serial_and_mpi_agree(tmp_path):
    pytest.importorskip("gpaw")
    if shutil.which("mpiexec") is None:
        pytest.fail("mpiexec missing: run scripts/setup.sh (openmpi-bin)")
    serial = _run(tmp_path, 1)
    parallel = _run(tmp_path, 2)
    assert serial["size"] == 1 and parallel["size"] == 2
    e_serial = {float(k): v for k, v in serial["energies"].items()}
    e_mpi = {float(k): v for k, v in parallel["energies"].items()}
    # compressing Cu by 8% costs energy (equilibrium a is about 3.6 A)
    assert e_serial[3.3] > e_serial[3.6] + 0.3
    for a in e_serial:
        assert e_mpi[a] == pytest.approx(e_serial[a], abs=2e-4)
