"""Synthetic labelled sets for the surrogate tests, built from real ASE fcc(111) slabs.

Slabs are pure or randomly substituted binaries of Cu, Pd and Au (2x2x3, the top layer tagged 1);
the adsorbate (tagged 0) sits on the ontop, bridge, fcc and hcp sites of each of the 2x2 surface
cells.  Energies are a smooth function of the site's real coordination fingerprint (per-element
first-shell values, a coordination term, a small second-shell term) plus optional Gaussian noise,
so a model on fingerprints can learn them.
"""

from __future__ import annotations

import numpy as np
from ase import Atoms
from ase.build import add_adsorbate, fcc111

from screener.enumerate.fingerprint import SlabBonds, fingerprint_of_adslab
from screener.surrogate.data import LabelledSet

ELEMENTS = ("Cu", "Pd", "Au")
EPS = {
    "CO": {"Cu": -0.45, "Pd": -1.05, "Au": -0.15},
    "H": {"Cu": -0.25, "Pd": -0.45, "Au": 0.15},
}
HEIGHTS = {
    "CO": {"ontop": 1.85, "bridge": 1.5, "fcc": 1.3, "hcp": 1.3},
    "H": {"ontop": 1.5, "bridge": 1.1, "fcc": 0.95, "hcp": 0.95},
}
SITES = ("ontop", "bridge", "fcc", "hcp")


def alloy_slab(host: str, guest: str | None = None, fraction: float = 0.0, seed: int = 0):
    """fcc(111) 2x2x3 of ``host`` with a ``fraction`` of its atoms swapped for ``guest``."""
    slab = fcc111(host, (2, 2, 3), vacuum=6.0)  # keeps info["adsorbate_info"] for place()
    if guest and fraction > 0:
        rng = np.random.default_rng(seed)
        k = max(1, int(round(fraction * len(slab))))
        symbols = slab.get_chemical_symbols()
        for i in rng.choice(len(slab), size=k, replace=False):
            symbols[i] = guest
        slab.set_chemical_symbols(symbols)
    return slab


def adsorbate_atoms(adsorbate: str) -> Atoms:
    if adsorbate == "CO":
        return Atoms("CO", positions=[(0, 0, 0), (0, 0, 1.15)])
    return Atoms(adsorbate, positions=[(0, 0, 0)])


def place(slab: Atoms, adsorbate: str, site: str, offset=(0, 0)) -> Atoms:
    out = slab.copy()
    add_adsorbate(out, adsorbate_atoms(adsorbate), HEIGHTS[adsorbate][site], site, offset=offset)
    out.info.pop("adsorbate_info", None)
    return out


def energy_of(fingerprint: dict, adsorbate: str) -> float:
    eps = EPS[adsorbate]
    first = fingerprint["first"]
    n1 = sum(e[3] for e in first)
    e1 = sum(eps[e[0]] * e[3] for e in first) / n1
    n2 = sum(e[3] for e in fingerprint["second"]) or 1
    e2 = sum(eps[e[0]] * e[3] for e in fingerprint["second"]) / n2
    return e1 - 0.12 * (n1 - 1) + 0.3 * (e2 - e1)


def slab_specs(seeds: int = 2) -> list[tuple[str, str | None, float, int]]:
    specs = [(el, None, 0.0, 0) for el in ELEMENTS]
    for i, host in enumerate(ELEMENTS):
        for guest in ELEMENTS[i + 1 :]:
            for fraction in (0.25, 0.5, 0.75):
                for seed in range(seeds):
                    specs.append((host, guest, fraction, seed))
    return specs


def make_frames(
    adsorbates=("CO",), specs=None, sites=SITES, offsets=((0, 0), (1, 1)), noise=0.0, seed=0
) -> list[Atoms]:
    """Labelled adsorbate+slab frames (info: E_ads, adsorbate, surface, site_type)."""
    rng = np.random.default_rng(seed)
    frames = []
    for k, (host, guest, fraction, s) in enumerate(specs or slab_specs()):
        slab = alloy_slab(host, guest, fraction, s)
        bonds = SlabBonds.of(slab)
        for ads in adsorbates:
            for site in sites:
                for offset in offsets:
                    adslab = place(slab, ads, site, offset)
                    fp = fingerprint_of_adslab(adslab, bonds)
                    adslab.info.update(
                        E_ads=energy_of(fp, ads) + noise * rng.standard_normal(),
                        adsorbate=ads,
                        surface=f"slab{k}",
                        site_type=site,
                    )
                    adslab.info["_fp"] = fp
                    frames.append(adslab)
    return frames


def labelled_set(frames: list[Atoms]) -> LabelledSet:
    """A LabelledSet straight from frames made by :func:`make_frames` (no file round trip)."""
    pure = []
    for a in frames:
        elements = {s for s, t in zip(a.get_chemical_symbols(), a.get_tags(), strict=True) if t}
        pure.append(next(iter(elements)) if len(elements) == 1 else None)
    return LabelledSet(
        fingerprints=[a.info["_fp"] for a in frames],
        energies=np.array([a.info["E_ads"] for a in frames]),
        adsorbates=[a.info["adsorbate"] for a in frames],
        groups=[a.info["surface"] for a in frames],
        pure=pure,
        atoms=list(frames),
        info=[dict(a.info) for a in frames],
    )


def pool(adsorbate="CO", noise=0.0, seed=0, seeds=2, offsets=((0, 0), (1, 1))) -> LabelledSet:
    return labelled_set(
        make_frames((adsorbate,), slab_specs(seeds), offsets=offsets, noise=noise, seed=seed)
    )
