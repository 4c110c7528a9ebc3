"""Featurizer: pure-element references with fallbacks, Tran & Ulissi tuples, caching, JSON."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

from screener.errors import InputError
from screener.surrogate.features import Featurizer, element_counts

Z = {"Cu": 29, "Pd": 46, "Au": 79, "Pt": 78}
X = {"Cu": 1.9, "Pd": 2.2, "Au": 2.54, "Pt": 2.28}


def fp(first: dict, second: dict) -> dict:
    return {
        "version": 1,
        "first": [[s, Z[s], X[s], n] for s, n in sorted(first.items())],
        "second": [[s, Z[s], X[s], n] for s, n in sorted(second.items())],
    }


ROWS = [  # fingerprint, energy, pure element of the slab
    (fp({"Cu": 1}, {"Cu": 9}), -0.4, "Cu"),
    (fp({"Cu": 3}, {"Cu": 12}), -0.6, "Cu"),
    (fp({"Pd": 1}, {"Pd": 9}), -1.0, "Pd"),
    (fp({"Cu": 2, "Au": 1}, {"Cu": 8, "Au": 4}), -0.3, None),
    (fp({"Au": 1}, {"Cu": 6, "Pt": 3}), -0.1, None),
]


def fitted(feature_set="tu+stats") -> Featurizer:
    fps, energies, pure = zip(*ROWS, strict=True)
    return Featurizer("CO", feature_set).fit(list(fps), np.array(energies), list(pure))


def test_references_pure_then_any_then_global():
    f = fitted()
    assert f.references["Cu"] == pytest.approx(-0.5) and f.reference_sources["Cu"] == "pure"
    assert f.references["Pd"] == pytest.approx(-1.0) and f.reference_sources["Pd"] == "pure"
    # no pure Au slab: median over the sites with Au in the first shell
    assert f.references["Au"] == pytest.approx(-0.2) and f.reference_sources["Au"] == "any"
    # Pt only ever in a second shell: the global median
    assert f.references["Pt"] == pytest.approx(-0.4) and f.reference_sources["Pt"] == "global"


def test_tran_ulissi_tuples_sorted_and_padded():
    f = fitted("tu")
    x = f.transform([ROWS[3][0]])[0]
    assert x.shape == (40,)
    # first shell: Cu (count 2) before Au (count 1), then two zero slots
    assert x[:8].tolist() == pytest.approx([-0.5, 29, 1.9, 2, -0.2, 79, 2.54, 1])
    assert not x[8:16].any()
    # second shell starts at column 16: Cu 8 then Au 4
    assert x[16:24].tolist() == pytest.approx([-0.5, 29, 1.9, 8, -0.2, 79, 2.54, 4])
    assert not x[24:40].any()
    full = fitted().transform([ROWS[3][0]])[0]
    assert full.shape == (50,) and full[:40].tolist() == x.tolist()
    names = fitted().feature_names
    stats = dict(zip(names[40:], full[40:], strict=True))
    assert stats["first_count"] == 3
    assert stats["first_ref_mean"] == pytest.approx((2 * -0.5 - 0.2) / 3)
    assert stats["first_ref_min"] == pytest.approx(-0.5)


def test_unknown_element_at_transform_uses_global_reference():
    f = fitted()
    Z["Ag"], X["Ag"] = 47, 1.93
    x = f.transform([fp({"Ag": 1}, {"Ag": 9})])[0]
    assert x[0] == pytest.approx(f.global_reference)


def test_round_trip_through_json_gives_same_features():
    f = fitted()
    g = Featurizer.from_dict(json.loads(json.dumps(f.to_dict())))
    fps = [r[0] for r in ROWS]
    np.testing.assert_array_equal(f.transform(fps), g.transform(fps))
    assert g.reference_sources == f.reference_sources


def test_transform_is_cached_per_distinct_fingerprint():
    f = fitted()
    base = [r[0] for r in ROWS]
    many = [  # distinct dict objects, few distinct contents (as many sites share one)
        {k: [list(e) for e in v] if k != "version" else v for k, v in base[i % 5].items()}
        for i in range(100_000)
    ]
    start = time.perf_counter()
    X_many = f.transform(many)
    elapsed = time.perf_counter() - start
    np.testing.assert_array_equal(X_many[:5], f.transform(base))
    assert X_many.shape == (100_000, 50)
    assert elapsed < 5.0, elapsed


def test_bad_feature_set_and_unfitted_use():
    with pytest.raises(InputError, match="unknown feature set"):
        Featurizer("CO", "nope")
    with pytest.raises(RuntimeError):
        Featurizer("CO").transform([ROWS[0][0]])


def test_element_counts_one_column_per_element_per_shell():
    X, elements = element_counts([r[0] for r in ROWS])
    assert elements == ["Au", "Cu", "Pd", "Pt"]
    assert X[3].tolist() == [1, 2, 0, 0, 4, 8, 0, 0]


def with_cn(fingerprint: dict, binding: list[int], second_sum: int, second_n: int) -> dict:
    return {
        **fingerprint,
        "version": 2,
        "cn": {"binding": binding, "second_sum": second_sum, "second_n": second_n},
    }


def test_coordination_columns_and_fallback_for_version_1():
    from screener.surrogate.features import best_feature_set
    from screener.surrogate.models import Surrogate

    rows = [(with_cn(f, [9] * len(f["first"]), 90, 9), e, p) for f, e, p in ROWS]
    fps, energies, pure = zip(*rows, strict=True)
    f = Featurizer("CO", "tu+stats+cn").fit(list(fps), np.array(energies), list(pure))
    bridge = with_cn(ROWS[0][0], [7, 9], 100, 16)
    x = f.transform([bridge])[0]
    assert x.shape == (57,) and f.n_features == len(f.feature_names) == 57
    named = dict(zip(f.feature_names[-7:], x[-7:], strict=True))
    assert named == pytest.approx(
        {"n_binding": 2, "cn_mean": 8, "cn_min": 7, "cn_max": 9, "gcn": 100 / 12,
         "gcn_per_binding": 100 / 24, "second_cn_mean": 100 / 16}
    )  # fmt: skip
    # the first 50 columns are those of tu+stats
    plain = Featurizer("CO", "tu+stats").fit(list(fps), np.array(energies), list(pure))
    assert x[:50] == pytest.approx(plain.transform([bridge])[0])
    # same elements, other coordination: another feature row (not served from the cache)
    assert not np.allclose(f.transform([with_cn(ROWS[0][0], [6, 6], 60, 10)])[0], x)

    v1 = [r[0] for r in ROWS]
    assert best_feature_set(list(fps)) == "tu+stats+cn" and best_feature_set(v1) == "tu+stats"
    with pytest.raises(InputError, match="no coordination numbers"):
        f.transform([ROWS[0][0]])
    groups = [str(i) for i in range(len(ROWS))]
    old = Surrogate("CO", model="extratrees", n_estimators=5).fit(
        v1, np.array(energies), groups, list(pure)
    )
    new = Surrogate("CO", model="extratrees", n_estimators=5).fit(
        list(fps), np.array(energies), groups, list(pure)
    )
    assert old.info["feature_set"] == "tu+stats" and new.info["feature_set"] == "tu+stats+cn"


def test_layer_compositions_tell_apart_sites_the_zones_do_not():
    """Two Pt(111)-like top sites with the same zones, one over a Ru-rich second layer: only
    zones+layers sees the difference; a fingerprint without layers (version < 6) falls back to
    zones, and refuses zones+layers in one line."""
    from ase.build import fcc111

    from screener.enumerate.fingerprint import fingerprint_of_adslab
    from screener.surrogate.features import best_feature_set

    fps = []
    for second in ("Pt", "Ru"):
        slab = fcc111("Pt", (3, 3, 4), vacuum=8.0)
        for i in range(len(slab)):
            if slab[i].tag == 2 and i % 2 == 0:
                slab[i].symbol = second
        top = max(range(len(slab)), key=lambda i: slab.positions[i, 2])
        adslab = slab.copy()
        adslab.append("O")
        adslab.positions[-1] = slab.positions[top] + [0, 0, 1.9]
        tags = adslab.get_tags()
        tags[-1] = 0
        adslab.set_tags(tags)
        fps.append(fingerprint_of_adslab(adslab))
    assert fps[0]["zones"]["binding"] == fps[1]["zones"]["binding"] == {"Pt": 1}
    assert fps[0]["layers"][0] == fps[1]["layers"][0] == {"Pt": 1.0}
    assert fps[0]["layers"][1] == {"Pt": 1.0} and set(fps[1]["layers"][1]) == {"Pt", "Ru"}
    energies, pure = np.array([0.1, 0.3]), [None, None]
    layered = Featurizer("OH", "zones+layers").fit(fps, energies, pure)
    rows = layered.transform(fps)
    names = layered.feature_names
    assert len(names) == rows.shape[1]
    assert rows[1, names.index("layer2_Ru")] == pytest.approx(fps[1]["layers"][1]["Ru"])
    assert rows[0, names.index("layer2_Ru")] == 0.0
    old = [{k: v for k, v in fp.items() if k != "layers"} for fp in fps]
    assert best_feature_set(fps) == "zones+layers+bonds+deep" and best_feature_set(old) == "zones"
    with pytest.raises(InputError, match="no layer compositions"):
        layered.transform(old)


def test_bond_columns_and_fallback_for_version_6():
    """zones+layers+bonds adds one column per bond kind and element pair (ordered from the
    binding atoms, unordered otherwise); fingerprints without bonds (version < 6) fall back to
    zones+layers and are refused by the bond set in one line."""
    from ase.build import add_adsorbate, fcc111

    from screener.enumerate.fingerprint import fingerprint_of_adslab
    from screener.surrogate.features import best_feature_set

    fps = []
    for ru in (False, True):
        slab = fcc111("Pt", (3, 3, 4), a=3.92, vacuum=8.0)
        add_adsorbate(slab, "O", 1.9, "ontop")
        slab.set_tags([*slab.get_tags()[:-1], 0])
        if ru:  # one ring atom of the top site
            top = int(np.argmin(np.linalg.norm(slab.positions[:-1] - slab.positions[-1], axis=1)))
            ring = [
                i
                for i in range(len(slab) - 1)
                if slab.get_tags()[i] == 1 and 2.7 < slab.get_distance(top, i, mic=True) < 2.9
            ]
            slab[ring[0]].symbol = "Ru"
        fps.append(fingerprint_of_adslab(slab))
    energies, pure = np.array([0.1, 0.3]), [None, None]
    featurizer = Featurizer("OH", "zones+layers+bonds").fit(fps, energies, pure)
    rows, names = featurizer.transform(fps), featurizer.feature_names
    assert len(names) == rows.shape[1] == featurizer.n_features
    # 2 elements: 4 ordered pairs for each of 2 kinds, 3 unordered pairs for each of 2 kinds
    assert sum(n.startswith(("binding_ring_", "binding_below_", "ring_ring_", "binding_binding_"))
               for n in names) == 2 * 4 + 2 * 3  # fmt: skip
    assert rows[1, names.index("binding_ring_Pt-Ru")] == 1
    assert rows[1, names.index("ring_ring_Pt-Ru")] == 2
    assert rows[0, names.index("binding_ring_Pt-Pt")] == 6
    assert "binding_ring_Ru-Pt" in names and rows[1, names.index("binding_ring_Ru-Pt")] == 0
    old = [{k: v for k, v in fp.items() if k != "bonds"} for fp in fps]
    assert best_feature_set(fps) == "zones+layers+bonds+deep"
    assert best_feature_set(old) == "zones+layers"
    with pytest.raises(InputError, match="no bond counts"):
        featurizer.transform(old)


def test_deep_columns_and_fallback_for_version_7():
    """zones+layers+bonds+deep adds the zones of the layer under the site's lower neighbours;
    version-7 fingerprints fall back to zones+layers+bonds, and the deep set refuses them in
    one line."""
    from ase.build import add_adsorbate, fcc111

    from screener.enumerate.fingerprint import DEEP_ZONES, fingerprint_of_adslab
    from screener.surrogate.features import best_feature_set

    slab = fcc111("Pt", (3, 3, 4), a=3.92, vacuum=8.0)
    add_adsorbate(slab, "O", 1.9, "ontop")
    slab.set_tags([*slab.get_tags()[:-1], 0])
    fps = [fingerprint_of_adslab(slab)]
    slab[[i for i, t in enumerate(slab.get_tags()) if t == 3][0]].symbol = "Ru"
    fps.append(fingerprint_of_adslab(slab))
    energies, pure = np.array([0.1, 0.3]), [None, None]
    deep = Featurizer("OH", "zones+layers+bonds+deep").fit(fps, energies, pure)
    plain = Featurizer("OH", "zones+layers+bonds").fit(fps, energies, pure)
    rows, names = deep.transform(fps), deep.feature_names
    assert len(names) == rows.shape[1] == deep.n_features
    # 2 elements: per deep zone 2 counts and a reference mean
    assert deep.n_features - plain.n_features == 2 * (2 + 1)
    assert rows[0, names.index("below2_Pt")] == 6 and rows[0, names.index("below2_shared_Pt")] == 3
    assert rows[1, names.index("below2_Ru")] + rows[1, names.index("below2_Pt")] == 6
    shared = [n for n in plain.feature_names if n in names]
    assert shared == plain.feature_names  # the version-7 columns keep their values
    assert np.array_equal(rows[:, [names.index(n) for n in shared]], plain.transform(fps))
    old = [
        {**fp, "zones": {z: c for z, c in fp["zones"].items() if z not in DEEP_ZONES}} for fp in fps
    ]
    assert best_feature_set(old) == "zones+layers+bonds"
    assert np.array_equal(plain.transform(old), plain.transform(fps))
    with pytest.raises(InputError, match="version < 8"):
        deep.transform(old)
