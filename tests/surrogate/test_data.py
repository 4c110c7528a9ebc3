"""read_labelled: fingerprints, adsorbates, pure flags, slab-identity groups and bad-data errors."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from ase import Atoms
from ase.io import write

from screener.errors import InputError
from screener.surrogate.data import read_labelled
from tests.surrogate import make_frames

SPECS = [("Cu", None, 0.0, 0), ("Pd", None, 0.0, 0), ("Cu", "Pd", 0.5, 0), ("Cu", "Pd", 0.5, 1)]


def _write(path, frames):
    clean = []
    for atoms in frames:
        a = atoms.copy()
        a.info = {k: v for k, v in atoms.info.items() if not k.startswith("_")}
        clean.append(a)
    write(path, clean, format="extxyz")
    return path


@pytest.fixture(scope="module")
def frames():
    return make_frames(("CO", "H"), SPECS, sites=("ontop", "fcc"), offsets=((0, 0),))


def test_reads_extxyz_with_fingerprints_adsorbates_pure_and_slab_groups(tmp_path, frames):
    data = read_labelled(_write(tmp_path / "pool.extxyz", frames))
    assert len(data) == len(frames) == 16
    assert data.adsorbates == [f.info["adsorbate"] for f in frames]
    np.testing.assert_allclose(data.energies, [f.info["E_ads"] for f in frames])
    assert [fp["first"] for fp in data.fingerprints] == [f.info["_fp"]["first"] for f in frames]
    assert data.pure == ["Cu"] * 4 + ["Pd"] * 4 + [None] * 8
    # one group per slab: sites (and adsorbates) of a slab share it, slabs differ
    by_surface = {}
    for group, info in zip(data.groups, data.info, strict=True):
        by_surface.setdefault(info["surface"], set()).add(group)
    assert all(len(g) == 1 for g in by_surface.values())
    assert len(set(data.groups)) == 4
    assert data.groups[0].startswith("Cu12:")
    # stable across reads
    assert read_labelled(tmp_path / "pool.extxyz").groups == data.groups
    assert len(data.select("H")) == 8 and set(data.select("H").adsorbates) == {"H"}


def test_relaxed_copies_of_a_slab_share_its_group(tmp_path, frames):
    moved = []
    rng = np.random.default_rng(0)
    for atoms in frames[:4]:  # Cu(111), CO and H on two sites
        a = atoms.copy()
        surf = a.get_tags() > 0
        a.positions[surf] += rng.normal(scale=0.08, size=(surf.sum(), 3))  # "relaxation"
        a.info = dict(atoms.info)
        moved.append(a)
    other = frames[4].copy()  # Pd slab
    data = read_labelled(_write(tmp_path / "moved.extxyz", moved + [other]))
    assert len(set(data.groups[:4])) == 1
    assert data.groups[4] != data.groups[0]


def test_group_by_info_key(tmp_path, frames):
    data = read_labelled(_write(tmp_path / "p.extxyz", frames), group_by="site_type")
    assert set(data.groups) == {"ontop", "fcc"}
    with pytest.raises(InputError, match="frame 0: no group key 'nope'.*E_ads"):
        read_labelled(tmp_path / "p.extxyz", group_by="nope")


def test_one_adsorbate_is_read_alone_and_a_missing_one_is_refused_before_fingerprinting(
    tmp_path, frames, monkeypatch
):
    from screener.surrogate import data as data_module

    path = _write(tmp_path / "p.extxyz", frames)
    everything = read_labelled(path)
    h = read_labelled(path, adsorbate="H")
    assert h.adsorbates == ["H"] * 8
    assert h.fingerprints == everything.select("H").fingerprints
    assert h.groups == everything.select("H").groups  # slab identity over every frame
    # only the H frames were fingerprinted; a file without O fingerprints nothing
    seen = []
    real = data_module._fingerprint_all
    monkeypatch.setattr(
        data_module, "_fingerprint_all", lambda atoms, b: seen.append(len(atoms)) or real(atoms, b)
    )
    read_labelled(path, adsorbate="H")
    with pytest.raises(
        InputError, match=r"^no O rows in .*p\.extxyz \(adsorbates present: CO, H\)"
    ):
        read_labelled(path, adsorbate="O")
    assert seen == [8]


def test_the_state_energies_are_relative_to(tmp_path, frames):
    path = _write(tmp_path / "gas.extxyz", frames[:4])
    assert read_labelled(path).reference is None  # no key: the gas references
    marked = []
    for k, atoms in enumerate(frames[:4]):
        a = atoms.copy()
        a.info = dict(atoms.info, reference=["Pt(111)", "Pt(111)", "gas", " gas"][k])
        marked.append(a)
    mixed = read_labelled(_write(tmp_path / "mixed.extxyz", marked))
    assert mixed.references == ["Pt(111)", "Pt(111)", None, None]
    assert mixed.take([0, 1]).reference == "Pt(111)" and mixed.take([2, 3]).reference is None
    with pytest.raises(InputError, match=r"different states \(Pt\(111\), the gas references\)"):
        _ = mixed.reference


def test_group_by_slab_falls_back_to_slab_identity_where_frames_lack_it(tmp_path, frames):
    tagged = []
    for k, atoms in enumerate(frames):
        a = atoms.copy()
        a.info = dict(atoms.info, slab=f"s{k % 2}") if k else dict(atoms.info)
        tagged.append(a)
    path = _write(tmp_path / "p.extxyz", tagged)
    assert read_labelled(path, group_by="slab").groups == read_labelled(path).groups
    named = _write(tmp_path / "q.extxyz", tagged[1:])
    assert set(read_labelled(named, group_by="slab").groups) == {"s0", "s1"}


def test_reads_ase_db_key_value_pairs(tmp_path, frames):
    import ase.db

    path = tmp_path / "pool.db"
    with ase.db.connect(str(path)) as db:
        for atoms in frames[:3]:
            db.write(atoms, E_ads=atoms.info["E_ads"], surface=atoms.info["surface"])
    data = read_labelled(path)
    assert len(data) == 3
    np.testing.assert_allclose(data.energies, [f.info["E_ads"] for f in frames[:3]])
    assert data.info[0]["surface"] == frames[0].info["surface"]


def _frame(frames, **info):
    a = frames[0].copy()
    a.info = {"E_ads": -0.5, **info}
    return a


@pytest.mark.parametrize(
    "case, match",
    [
        ("missing", "no such file"),
        ("empty", "empty file"),
        ("markdown", r"no structures in it \(read as ase format 'castep-md'\)"),
        ("garbage", "cannot read"),
        ("no_energy", r"frame 1: no energy key 'E_ads' \(info keys: foo\)"),
        ("no_tags", "frame 1: no surface atoms tagged >= 1"),
        ("no_adsorbate", "frame 1: no adsorbate atoms"),
        ("bad_adsorbate", "frame 1: adsorbate .* is HN; supported: CO, H, O, OH"),
        ("nan", "frame 1: energy 'E_ads' is not finite"),
        ("bad_initial", r"frame 1: initial_binding \[99\] is not a non-empty list"),
    ],
)
def test_bad_data_is_input_error_naming_file_and_frame(tmp_path, frames, case, match):
    path = tmp_path / (f"{case}.md" if case == "markdown" else f"{case}.extxyz")
    good = _frame(frames)
    bad = good.copy()
    bad.info = dict(good.info)
    if case == "empty":
        path.write_text("")
    elif case == "markdown":
        path.write_text("# notes\n\nnot a structure file\n")
    elif case == "garbage":
        path.write_text("this is not a structure\n")
    elif case != "missing":
        if case == "no_energy":
            bad.info = {"foo": 1}
        elif case == "no_tags":
            bad.set_tags(0)
        elif case == "no_adsorbate":
            bad.set_tags(np.maximum(bad.get_tags(), 1))
        elif case == "bad_adsorbate":
            slab = bad[bad.get_tags() > 0]
            nh = Atoms("NH", positions=[(0, 0, 14.0), (0, 0, 15.0)], tags=[0, 0])
            bad = slab + nh
            bad.info = dict(good.info)
        elif case == "nan":
            bad.info["E_ads"] = math.nan
        elif case == "bad_initial":
            good.info["initial_binding"] = "[0]"
            bad.info["initial_binding"] = "[99]"
        write(path, [good, bad], format="extxyz")
    with pytest.raises(InputError, match=match) as error:
        read_labelled(path)
    assert str(path) in str(error.value)
    assert error.value.exit_code == 2


def test_initial_binding_makes_a_row_known_by_its_starting_site(tmp_path, frames):
    """A relaxation that started on another site is known by where it started."""
    from screener.enumerate.fingerprint import binding_atoms, fingerprint_of_adslab

    chosen = [f.copy() for f in frames[:4]]
    for a, f in zip(chosen, frames[:4], strict=True):
        a.info = {k: v for k, v in f.info.items() if not k.startswith("_")}
    relaxed = [fingerprint_of_adslab(a) for a in chosen]
    data = read_labelled(_write(tmp_path / "plain.extxyz", chosen))
    assert data.fingerprints == data.relaxed_fingerprints == relaxed
    assert data.known_by_site == 0
    started = [chosen[1], chosen[0], chosen[3], chosen[2]]  # each frame started on another site
    for a, b in zip(chosen, started, strict=True):
        a.info["initial_binding"] = str(binding_atoms(b))
    data = read_labelled(_write(tmp_path / "initial.extxyz", chosen))
    assert data.fingerprints == [fingerprint_of_adslab(b) for b in started] != relaxed
    assert data.relaxed_fingerprints == relaxed and data.known_by_site == 4
    assert data.initial_binding == [binding_atoms(b) for b in started]
    part = data.take([1])
    assert part.fingerprints == [data.fingerprints[1]]
    assert part.relaxed_fingerprints == [relaxed[1]] and part.known_by_site == 1


def test_energy_key_option_and_select_errors(tmp_path, frames):
    a = _frame(frames, dE=-0.25)
    data = read_labelled(_write(tmp_path / "k.extxyz", [a]), energy_key="dE")
    assert data.energies.tolist() == [-0.25]
    with pytest.raises(InputError, match="no H rows"):
        data.select("H")


def test_a_script_without_a_main_guard_reads_through_worker_processes(tmp_path, frames):
    """Big files are fingerprinted in worker processes; those must not re-run the caller's
    script (a plain ``python script.py`` with no ``if __name__ == "__main__"``)."""
    path = _write(tmp_path / "pool.extxyz", frames)
    script = tmp_path / "script.py"
    script.write_text(
        "import json, sys\n"
        "import screener.surrogate.data as data\n"
        "data.PARALLEL_FRAMES, data.CHUNK_FRAMES = 2, 3  # the worker path for this small file\n"
        "print('script ran', file=sys.stderr)\n"
        f"rows = data.read_labelled({str(path)!r})\n"
        "print(json.dumps(rows.fingerprints))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    run = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=300, env=env
    )
    assert run.returncode == 0, run.stderr
    assert run.stderr.count("script ran") == 1  # the workers did not run it again
    serial = read_labelled(path)
    assert json.loads(run.stdout) == json.loads(json.dumps(serial.fingerprints))
