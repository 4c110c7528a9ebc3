"""Bulks: element validation, prototypes and their lattice rule, imports."""

from __future__ import annotations

import re

import pytest
from ase.build import bulk
from ase.io import write

from screener.enumerate.bulks import (
    parse_elements,
    prototype_bulks,
    read_bulk_file,
    volume_per_atom,
)
from screener.errors import InputError


def test_parse_elements_sorts_and_rejects_unknown():
    assert parse_elements("Pd, Cu,Cu") == ["Cu", "Pd"]
    with pytest.raises(InputError, match="unknown element 'Xx'"):
        parse_elements("Cu,Xx")
    with pytest.raises(InputError, match="'Mn' has no fcc/bcc/hcp"):
        parse_elements("Mn")


def test_three_elements_give_unaries_and_all_binary_prototypes():
    specs = prototype_bulks(["Cu", "Ni", "Pd"])
    keys = {s.key for s in specs}
    assert len(specs) == len(keys) == 3 + 3 * 4
    assert {"proto:fcc:Cu", "proto:B2:CuPd", "proto:L1_0:NiPd", "proto:L1_2:Cu3Ni"} <= keys
    assert "proto:L1_2:CuNi3" in keys


def test_prototype_volumes_follow_vegards_law():
    specs = {s.key: s for s in prototype_bulks(["Cu", "Pd"])}
    v_cu, v_pd = volume_per_atom("Cu"), volume_per_atom("Pd")
    for key, expected in [
        ("proto:B2:CuPd", (v_cu + v_pd) / 2),
        ("proto:L1_0:CuPd", (v_cu + v_pd) / 2),
        ("proto:L1_2:Cu3Pd", (3 * v_cu + v_pd) / 4),
        ("proto:L1_2:CuPd3", (v_cu + 3 * v_pd) / 4),
    ]:
        atoms = specs[key].atoms
        assert atoms.get_volume() / len(atoms) == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize("name,fmt", [("a.cif", "cif"), ("POSCAR", "vasp"), ("a.extxyz", "extxyz")])
def test_import_formats_agree_on_identity(tmp_path, name, fmt):
    atoms = bulk("Cu", "fcc", a=3.6, cubic=True)
    path = tmp_path / name
    write(path, atoms, format=fmt)
    spec = read_bulk_file(path)
    reference = bulk("Cu", "fcc", a=3.6)  # primitive cell of the same crystal
    write(tmp_path / "ref.extxyz", reference)
    assert spec.key == read_bulk_file(tmp_path / "ref.extxyz").key
    assert spec.formula == "Cu" and spec.prototype == "imported"


def test_unreadable_bulk_files_are_input_errors(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        read_bulk_file(tmp_path / "missing.cif")
    directory = re.escape(f"bulk file {tmp_path}: is a directory, not a file")
    with pytest.raises(InputError, match=directory):
        read_bulk_file(tmp_path)
    with pytest.raises(InputError, match="bulk file /dev/null: not a regular file"):
        read_bulk_file("/dev/null")
    junk = tmp_path / "junk.cif"
    junk.write_text("this is not a crystal\n")
    with pytest.raises(InputError, match="cannot read bulk file"):
        read_bulk_file(junk)
    molecule = tmp_path / "mol.xyz"
    molecule.write_text("2\n\nH 0 0 0\nH 0 0 0.74\n")
    with pytest.raises(InputError, match="not a 3D periodic crystal"):
        read_bulk_file(molecule)
