"""Numeric features from stored coordination fingerprints (Tran & Ulissi, Nat. Catal. 1, 696, 2018).

The stored fingerprint (:mod:`screener.enumerate.fingerprint`) lists, per shell, the elements
bonded to the adsorbate (first shell) and to those atoms (second shell) with their atomic number,
Pauling electronegativity and count.  The paper's fourth number, the median adsorption energy of
the adsorbate on the pure element, is what :meth:`Featurizer.fit` learns here, from the training
rows only (it is a function of labels, so it must be refitted inside every CV fold).

Feature sets:

``tu``
    the paper's vector: per shell, one ``(reference dE, Z, Pauling, count)`` tuple per element,
    sorted by count (largest first) then Z, padded with zeros to 4 slots (first shell) and 6
    slots (second shell) -- 40 columns.  Elements beyond the slots (never the case for binary or
    ternary alloys in the first shell) are dropped, the smallest counts first.
``tu+stats``
    ``tu`` plus, per shell, the total count, the count-weighted mean, minimum and maximum of the
    reference energies and the count-weighted mean electronegativity (10 more columns).
``tu+stats+cn``
    ``tu+stats`` plus coordination (fingerprint version 2, ``"cn"``): number of binding atoms,
    mean, minimum and maximum coordination number of the binding atoms, the generalized
    coordination number (second-shell CN sum / 12), the same per binding atom, and the mean CN
    of the second-shell atoms (7 more columns).
``zones``
    per-element counts in the zones around the site (fingerprint version 4, ``"zones"``: the
    binding atoms, the surface ring around them, the atoms below in the next layer, the second
    ring, and the atoms of each zone shared by two binding atoms), each zone's mean reference
    energy, and the 7 coordination columns: where each element sits, not only that it is near.
``zones+layers``
    ``zones`` plus the element fractions of the top three layers (fingerprint version 6,
    ``"layers"``): the composition under the site beyond the atoms that touch it.
``zones+layers+bonds``
    ``zones+layers`` plus the bonds around the site by element pair (fingerprint version 7,
    ``"bonds"``): binding atom to ring and to the layer below (ordered pairs), within the ring
    and between binding atoms (unordered): how the zones' elements are arranged.
``zones+layers+bonds+deep`` (default)
    ``zones+layers+bonds`` plus the next layer down (fingerprint version 8): the zones
    ``below2`` and ``below2_shared``, the ligands of the atoms under the site.

A fingerprint older than a set needs cannot be transformed with it: :func:`best_feature_set`
picks the richest set every fingerprint of the data can give.

Transforming is cached per distinct fingerprint (sites of one slab type share fingerprints), so a
million fingerprints cost a dictionary lookup each.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from operator import itemgetter

import numpy as np

from screener.enumerate.fingerprint import BOND_KINDS, DEEP_ZONES, LAYER_DEPTH
from screener.enumerate.fingerprint import ZONES as ZONE_NAMES
from screener.errors import InputError

FIRST_SLOTS = 4
SECOND_SLOTS = 6
FEATURE_SETS = (
    "tu", "tu+stats", "tu+stats+cn", "zones", "zones+layers", "zones+layers+bonds",
    "zones+layers+bonds+deep",
)  # fmt: skip
DEFAULT_FEATURE_SET = "zones+layers+bonds+deep"
#: the next richest set, for fingerprints too old for a set, with the fingerprint version each
#: set needs (tu and tu+stats: any)
FALLBACK = {
    "zones+layers+bonds+deep": "zones+layers+bonds",
    "zones+layers+bonds": "zones+layers",
    "zones+layers": "zones",
    "zones": "tu+stats+cn",
    "tu+stats+cn": "tu+stats",
}
NEEDS_VERSION = {
    "zones+layers+bonds+deep": 8, "zones+layers+bonds": 7, "zones+layers": 6, "zones": 4,
    "tu+stats+cn": 2,
}  # fmt: skip
ORDERED_BONDS = ("binding_ring", "binding_below")  # "A-B": A the binding atom's element
CN_NORM = 12.0  # generalized coordination number: CN sum over the second shell / 12
_N_EXTRA = {"tu": 0, "tu+stats": 10, "tu+stats+cn": 17}
SOURCES = ("pure", "any", "global")

_SYMBOL_COUNT = itemgetter(0, 3)
_CN_NAMES = (
    "n_binding", "cn_mean", "cn_min", "cn_max", "gcn", "gcn_per_binding", "second_cn_mean",
)  # fmt: skip
Shell = tuple[tuple[str, float], ...]
Key = tuple


def fingerprint_key(fingerprint: dict) -> Key:
    """Hashable identity of a fingerprint: shells, coordination and zones."""
    cn = fingerprint.get("cn")
    zones = fingerprint.get("zones")
    layers = fingerprint.get("layers")
    bonds = fingerprint.get("bonds")
    return (
        tuple(map(_SYMBOL_COUNT, fingerprint["first"])),
        tuple(map(_SYMBOL_COUNT, fingerprint["second"])),
        None if cn is None else (tuple(cn["binding"]), cn["second_sum"], cn["second_n"]),
        None if zones is None else tuple(_items(zones, z) for z in ZONE_NAMES + DEEP_ZONES),
        None if layers is None else tuple(tuple(sorted(layer.items())) for layer in layers),
        None if bonds is None else tuple(tuple(sorted(bonds[k].items())) for k in BOND_KINDS),
    )


def _items(counts: dict, name: str) -> tuple:
    """A zone's counts, sorted; ``()`` where an older fingerprint lacks the zone."""
    return tuple(sorted((counts.get(name) or {}).items()))


def has_coordination(fingerprints: Iterable[dict]) -> bool:
    """True when every fingerprint carries coordination numbers (version >= 2)."""
    return all(fp.get("cn") is not None for fp in fingerprints)


def has_zones(fingerprints: Iterable[dict]) -> bool:
    """True when every fingerprint carries zone counts (version >= 4)."""
    return all(fp.get("zones") is not None for fp in fingerprints)


def has_layers(fingerprints: Iterable[dict]) -> bool:
    """True when every fingerprint carries layer compositions (version >= 6)."""
    return all(fp.get("layers") is not None for fp in fingerprints)


def has_bonds(fingerprints: Iterable[dict]) -> bool:
    """True when every fingerprint carries bond counts by element pair (version >= 7)."""
    return all(fp.get("bonds") is not None for fp in fingerprints)


def has_deep(fingerprints: Iterable[dict]) -> bool:
    """True when every fingerprint carries the zones of the next layer down (version >= 8)."""
    return all(DEEP_ZONES[0] in (fp.get("zones") or {}) for fp in fingerprints)


_CARRIES = {
    "zones+layers+bonds+deep": lambda fps: has_deep(fps) and has_bonds(fps) and has_layers(fps),
    "zones+layers+bonds": lambda fps: has_bonds(fps) and has_layers(fps),
    "zones+layers": has_layers,
    "zones": has_zones,
    "tu+stats+cn": has_coordination,
}


def best_feature_set(fingerprints: Iterable[dict], wanted: str = DEFAULT_FEATURE_SET) -> str:
    """``wanted``, or the richest set that older fingerprints among them can give."""
    fingerprints = list(fingerprints)
    while wanted in FALLBACK and not _CARRIES[wanted](fingerprints):
        wanted = FALLBACK[wanted]
    return wanted


def feature_set_for_version(version: int, wanted: str = DEFAULT_FEATURE_SET) -> str:
    """``wanted``, or the richest set that fingerprints of ``version`` can give."""
    while wanted in FALLBACK and version < NEEDS_VERSION[wanted]:
        wanted = FALLBACK[wanted]
    return wanted


def coordination_features(fingerprint: dict) -> list[float]:
    """The 7 ``+cn`` columns of one fingerprint (see the module docstring)."""
    cn = fingerprint.get("cn")
    if cn is None:
        raise InputError(
            "fingerprint has no coordination numbers (version 1): re-seed the space to "
            "upgrade its fingerprints, or use the tu+stats feature set"
        )
    binding = np.asarray(cn["binding"], dtype=float)
    n = max(len(binding), 1)
    gcn = cn["second_sum"] / CN_NORM
    return [
        float(len(binding)),
        float(binding.mean()) if len(binding) else 0.0,
        float(binding.min()) if len(binding) else 0.0,
        float(binding.max()) if len(binding) else 0.0,
        gcn,
        gcn / n,
        cn["second_sum"] / cn["second_n"] if cn["second_n"] else 0.0,
    ]


def _unique(fingerprints: Sequence[dict]) -> tuple[list[dict], np.ndarray]:
    """Distinct fingerprints (first occurrence) and each row's index into them."""
    index: dict[Key, int] = {}
    firsts: list[dict] = []
    inverse = np.empty(len(fingerprints), dtype=np.int64)
    for row, fp in enumerate(fingerprints):
        key = fingerprint_key(fp)
        slot = index.get(key)
        if slot is None:
            slot = index[key] = len(firsts)
            firsts.append(fp)
        inverse[row] = slot
    return firsts, inverse


def _shell_elements(fingerprint: dict, shell: str) -> Iterable[str]:
    return (e[0] for e in fingerprint[shell])


class Featurizer:
    """Numeric features from fingerprints; :meth:`fit` learns the pure-element median dE references.

    ``references`` maps element -> median dE (eV) and ``reference_sources`` element -> where it
    came from: ``"pure"`` (median over labelled sites on pure-element slabs of that element),
    ``"any"`` (no pure slab: median over sites whose first shell contains the element) or
    ``"global"`` (neither: median of all training rows, also used for elements first met at
    transform time).
    """

    def __init__(self, adsorbate: str, feature_set: str = DEFAULT_FEATURE_SET):
        if feature_set not in FEATURE_SETS:
            raise InputError(
                f"unknown feature set '{feature_set}' (choose from {', '.join(FEATURE_SETS)})"
            )
        self.adsorbate = adsorbate
        self.feature_set = feature_set
        self.references: dict[str, float] = {}
        self.reference_sources: dict[str, str] = {}
        self.global_reference: float | None = None
        self.elements: list[str] = []  # the zone-count columns (``zones``), set by fit
        self._cache: dict[Key, np.ndarray] = {}
        self._bond_place: dict[tuple[str, str], int] | None = None

    # -- fitting -------------------------------------------------------------------------------
    def fit(
        self, fingerprints: Sequence[dict], energies: np.ndarray, pure: Sequence[str | None]
    ) -> Featurizer:
        energies = np.asarray(energies, dtype=float)
        if len(fingerprints) != len(energies) or len(pure) != len(energies):
            raise ValueError("fingerprints, energies and pure must have the same length")
        if len(energies) == 0:
            raise InputError("cannot fit references on zero rows")
        self.global_reference = float(np.median(energies))
        elements: set[str] = {p for p in pure if p}
        first_sets = []
        for fp in fingerprints:
            first = set(_shell_elements(fp, "first"))
            first_sets.append(first)
            elements |= first | set(_shell_elements(fp, "second"))
            for zone in (fp.get("zones") or {}).values():
                elements |= set(zone)
            for layer in fp.get("layers") or ():
                elements |= set(layer)
        self.elements = sorted(elements)
        pure_arr = np.array([p or "" for p in pure], dtype=object)
        self.references, self.reference_sources = {}, {}
        for element in sorted(elements):
            on_pure = energies[pure_arr == element]
            if len(on_pure):
                value, source = np.median(on_pure), "pure"
            else:
                touching = energies[[element in s for s in first_sets]]
                if len(touching):
                    value, source = np.median(touching), "any"
                else:
                    value, source = self.global_reference, "global"
            self.references[element] = float(value)
            self.reference_sources[element] = source
        self._cache = {}
        self._bond_place = None
        return self

    def reference(self, element: str) -> float:
        if self.global_reference is None:
            raise RuntimeError("Featurizer used before fit()")
        return self.references.get(element, self.global_reference)

    # -- transforming --------------------------------------------------------------------------
    @property
    def n_features(self) -> int:
        if self.feature_set.startswith("zones"):
            zones = len(self.zone_names) * (len(self.elements) + 1) + len(_CN_NAMES)
            layers = LAYER_DEPTH * len(self.elements) if self.with_layers else 0
            return zones + layers + (len(self._bond_index) if self.with_bonds else 0)
        return 4 * (FIRST_SLOTS + SECOND_SLOTS) + _N_EXTRA[self.feature_set]

    @property
    def feature_names(self) -> list[str]:
        if self.feature_set.startswith("zones"):
            names = [f"{zone}_{e}" for zone in self.zone_names for e in self.elements]
            names += [f"{zone}_ref_mean" for zone in self.zone_names]
            names += list(_CN_NAMES)
            if self.with_layers:
                names += [f"layer{k}_{e}" for k in range(1, LAYER_DEPTH + 1) for e in self.elements]
            if self.with_bonds:
                names += [f"{kind}_{pair}" for kind, pair in self._bond_columns]
            return names
        names = []
        for shell, slots in (("first", FIRST_SLOTS), ("second", SECOND_SLOTS)):
            for k in range(slots):
                names += [f"{shell}{k}_{q}" for q in ("ref", "Z", "pauling", "count")]
        if self.feature_set != "tu":
            for shell in ("first", "second"):
                names += [
                    f"{shell}_{q}"
                    for q in ("count", "ref_mean", "ref_min", "ref_max", "pauling_mean")
                ]
        if self.feature_set.endswith("+cn"):
            names += list(_CN_NAMES)
        return names

    def _zone_row(self, fingerprint: dict) -> np.ndarray:
        """Counts per element per zone, each zone's mean reference dE, coordination numbers."""
        zones = fingerprint.get("zones")
        if zones is None:
            raise InputError(
                "fingerprint has no zone counts (version < 4): re-seed the space to upgrade "
                "its fingerprints, or use the tu+stats+cn feature set"
            )
        if self.with_deep and not has_deep([fingerprint]):
            raise InputError(
                "fingerprint has no zones under the layer below the site (version < 8): re-seed "
                "the space to upgrade its fingerprints, or use the zones+layers+bonds feature set"
            )
        column = {e: k for k, e in enumerate(self.elements)}
        m = len(self.elements)
        out = np.zeros(self.n_features)
        zone_names = self.zone_names
        means = len(zone_names) * m
        for z, name in enumerate(zone_names):
            counts = zones.get(name) or {}
            total = sum(counts.values())
            for element, n in counts.items():
                k = column.get(element)
                if k is not None:  # an element no training row had: its reference still counts
                    out[z * m + k] = n
            if total:
                out[means + z] = sum(n * self.reference(e) for e, n in counts.items()) / total
        start = means + len(zone_names)
        out[start : start + len(_CN_NAMES)] = coordination_features(fingerprint)
        if self.with_layers:
            layers = fingerprint.get("layers")
            if layers is None:
                raise InputError(
                    "fingerprint has no layer compositions (version < 6): re-seed the space to "
                    "upgrade its fingerprints, or use the zones feature set"
                )
            start += len(_CN_NAMES)
            for depth, layer in enumerate(layers[:LAYER_DEPTH]):
                for element, fraction in layer.items():
                    k = column.get(element)
                    if k is not None:
                        out[start + depth * m + k] = fraction
        if self.with_bonds:
            bonds = fingerprint.get("bonds")
            if bonds is None:
                raise InputError(
                    "fingerprint has no bond counts (version < 7): re-seed the space to "
                    "upgrade its fingerprints, or use the zones+layers feature set"
                )
            place = self._bond_index
            start = self.n_features - len(place)
            for kind in BOND_KINDS:
                for pair, n in (bonds.get(kind) or {}).items():
                    k = place.get((kind, pair))
                    if k is not None:  # a pair with an element no training row had
                        out[start + k] = n
        return out

    @property
    def with_layers(self) -> bool:
        return "layers" in self.feature_set.split("+")

    @property
    def with_bonds(self) -> bool:
        return "bonds" in self.feature_set.split("+")

    @property
    def with_deep(self) -> bool:
        return "deep" in self.feature_set.split("+")

    @property
    def zone_names(self) -> tuple[str, ...]:
        """The zones the feature set counts (the next layer down only with ``+deep``)."""
        return ZONE_NAMES + DEEP_ZONES if self.with_deep else ZONE_NAMES

    @property
    def _bond_columns(self) -> list[tuple[str, str]]:
        """(kind, "A-B") of each bond column: ordered pairs for the bonds from binding atoms,
        unordered (A <= B) for the others."""
        els = self.elements
        ordered = [f"{a}-{b}" for a in els for b in els]
        unordered = [f"{a}-{b}" for i, a in enumerate(els) for b in els[i:]]
        return [
            (kind, pair)
            for kind in BOND_KINDS
            for pair in (ordered if kind in ORDERED_BONDS else unordered)
        ]

    @property
    def _bond_index(self) -> dict[tuple[str, str], int]:
        """(kind, pair) -> bond column, built once per fit (the columns follow the elements)."""
        if self._bond_place is None:
            self._bond_place = {c: k for k, c in enumerate(self._bond_columns)}
        return self._bond_place

    def _row(self, fingerprint: dict) -> np.ndarray:
        if self.feature_set.startswith("zones"):
            return self._zone_row(fingerprint)
        out = np.zeros(self.n_features)
        col = 0
        stats = []
        for shell, slots in (("first", FIRST_SLOTS), ("second", SECOND_SLOTS)):
            entries = [
                (self.reference(e[0]), float(e[1]), float(e[2]), float(e[3]))
                for e in fingerprint[shell]
            ]
            entries.sort(key=lambda t: (-t[3], t[1]))
            for k, entry in enumerate(entries[:slots]):
                out[col + 4 * k : col + 4 * k + 4] = entry
            col += 4 * slots
            if entries:
                arr = np.array(entries)
                total = arr[:, 3].sum()
                weights = arr[:, 3] / total if total > 0 else np.full(len(arr), 1 / len(arr))
                stats.append(
                    [
                        total,
                        float(weights @ arr[:, 0]),
                        arr[:, 0].min(),
                        arr[:, 0].max(),
                        float(weights @ arr[:, 2]),
                    ]
                )
            else:
                stats.append([0.0] * 5)
        if self.feature_set != "tu":
            out[col : col + 10] = np.concatenate(stats)
        if self.feature_set.endswith("+cn"):
            out[col + 10 :] = coordination_features(fingerprint)
        return out

    def transform(self, fingerprints: Sequence[dict]) -> np.ndarray:
        """Float array (n, n_features); one computation per distinct fingerprint."""
        table, inverse = self.transform_distinct(fingerprints)
        return table[inverse]

    def transform_distinct(self, fingerprints: Sequence[dict]) -> tuple[np.ndarray, np.ndarray]:
        """(features of the distinct fingerprints, row -> distinct index): X = table[inverse]."""
        if self.global_reference is None:
            raise RuntimeError("Featurizer used before fit()")
        if len(fingerprints) == 0:
            return np.zeros((0, self.n_features)), np.zeros(0, dtype=np.int64)
        distinct, inverse = _unique(fingerprints)
        table = np.empty((len(distinct), self.n_features))
        for slot, fp in enumerate(distinct):
            key = fingerprint_key(fp)
            row = self._cache.get(key)
            if row is None:
                row = self._row(fp)
                if len(self._cache) < 200_000:
                    self._cache[key] = row
            table[slot] = row
        return table, inverse

    # -- persistence ---------------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {
            "adsorbate": self.adsorbate,
            "feature_set": self.feature_set,
            "references": dict(self.references),
            "reference_sources": dict(self.reference_sources),
            "global_reference": self.global_reference,
            "elements": list(self.elements),
            "slots": [FIRST_SLOTS, SECOND_SLOTS],
        }

    @classmethod
    def from_dict(cls, d: dict) -> Featurizer:
        if list(d.get("slots", [FIRST_SLOTS, SECOND_SLOTS])) != [FIRST_SLOTS, SECOND_SLOTS]:
            raise InputError("featurizer was saved with other slot counts; refit it")
        out = cls(d["adsorbate"], d.get("feature_set", DEFAULT_FEATURE_SET))
        out.references = {str(k): float(v) for k, v in d["references"].items()}
        out.reference_sources = {str(k): str(v) for k, v in d["reference_sources"].items()}
        g = d.get("global_reference")
        out.global_reference = None if g is None else float(g)
        out.elements = [str(e) for e in d.get("elements", [])]
        return out


def element_counts(
    fingerprints: Sequence[dict], elements: Sequence[str] | None = None
) -> tuple[np.ndarray, list[str]]:
    """One column per element per shell (first, then second) with that element's count.

    ``elements`` fixes the columns (unknown elements are ignored); by default every element seen.
    Used by the baseline model.
    """
    if elements is None:
        seen = set()
        for fp in fingerprints:
            seen |= set(_shell_elements(fp, "first")) | set(_shell_elements(fp, "second"))
        elements = sorted(seen)
    column = {e: k for k, e in enumerate(elements)}
    m = len(elements)
    distinct, inverse = _unique(fingerprints)
    table = np.zeros((len(distinct), 2 * m))
    for slot, fp in enumerate(distinct):
        for offset, shell in ((0, "first"), (m, "second")):
            for e in fp[shell]:
                k = column.get(e[0])
                if k is not None:
                    table[slot, offset + k] = e[3]
    return table[inverse], list(elements)
