"""Symmetry-unique adsorption sites on the top side of a slab.

1. Surface atoms are those a probe sphere (radius ``probe_radius``, A) dropped from above touches
   first, atoms having half their shortest bond as radius.  Nothing below the top side is ever
   reached, and the result does not depend on the vacuum size.
2. Among the surface atoms and their in-plane periodic images, an edge is a distance up to
   ``BOND_FACTOR`` x the nearest-neighbour distance (the site-edge rule of
   :mod:`workflows.bonding`, looser than a metal-metal bond so that bcc(100) has its 4-fold
   hollow): every surface atom is an ontop site, every edge a bridge, every triangle of edges with
   no other surface atom inside its projection a 3-fold hollow, and every ring of four edges whose
   diagonals are not edges and whose atoms lie on one circle (in projection) a 4-fold hollow.
3. A 3-fold hollow is ``hcp`` when an atom of the next layer lies right below it (along the
   hollow's own normal), ``fcc`` otherwise.
4. Sites related by a symmetry operation of the slab that keeps +z up are one site; the size of the
   orbit in the cell is its multiplicity.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from ase import Atoms

from screener.names import SITE_TYPES
from workflows import bonding

BOND_FACTOR = bonding.SITE_EDGE_FACTOR  # an edge longer than this x the shortest bond is none
GRID_SPACING = 0.2  # A, probe grid


@dataclass
class SiteCandidate:
    """A site: its type, the point on the surface, binding atoms and symmetry multiplicity."""

    site_type: str
    position: np.ndarray  # xy of the site, z = mean height of the binding atoms (A)
    binding: list[int]  # indices into the slab
    offsets: list[tuple[int, int]] = field(default_factory=list)  # periodic image of each
    multiplicity: int = 1

    def binding_positions(self, slab: Atoms) -> np.ndarray:
        cell = slab.cell.array
        return np.array(
            [
                slab.positions[i] + ox * cell[0] + oy * cell[1]
                for i, (ox, oy) in zip(self.binding, self.offsets, strict=True)
            ]
        )

    def position_key(self) -> str:
        return ",".join(f"{v:.2f}" for v in self.position)


def nearest_neighbour_distances(slab: Atoms) -> np.ndarray:
    """Shortest distance from every atom to any other (periodic images in the plane count)."""
    return bonding.shortest_bonds(slab)


def surface_atoms(slab: Atoms, probe_radius: float = 1.0) -> np.ndarray:
    """Indices of the atoms a probe falling from above touches first (sorted).

    The probe falls along z at every point of a grid over the cell and first touches the atom
    whose sphere (its radius plus the probe's) reaches highest there; an atom's nearest periodic
    image in the plane (:func:`workflows.bonding.minimum_image`) is the one that reaches highest.
    """
    reach = nearest_neighbour_distances(slab) / 2 + probe_radius
    cell = slab.cell.array
    flat = slab.positions.copy()
    flat[:, 2] = 0.0  # lateral distances only
    na = max(2, int(np.ceil(np.linalg.norm(cell[0]) / GRID_SPACING)))
    nb = max(2, int(np.ceil(np.linalg.norm(cell[1]) / GRID_SPACING)))
    fa, fb = np.meshgrid(np.arange(na) / na, np.arange(nb) / nb, indexing="ij")
    grid = np.zeros((na * nb, 3))
    grid[:, :2] = np.stack([fa.ravel(), fb.ravel()], axis=1) @ cell[:2, :2]
    z = slab.positions[:, 2]
    touched: set[int] = set()
    for chunk in np.array_split(grid, max(1, len(grid) * len(slab) // 50_000)):
        delta = (flat[None, :, :] - chunk[:, None, :]).reshape(-1, 3)
        lateral = bonding.minimum_image(delta, slab).reshape(len(chunk), len(slab), 3)
        d2 = (lateral**2).sum(axis=2)
        height = np.where(d2 < reach**2, z + np.sqrt(np.clip(reach**2 - d2, 0, None)), -np.inf)
        first = height.argmax(axis=1)
        ok = np.isfinite(height[np.arange(len(chunk)), first])
        touched.update(first[ok].tolist())
    return np.array(sorted(touched), dtype=int)


def find_sites(
    slab: Atoms, probe_radius: float = 1.0, symprec: float = 0.05
) -> list[SiteCandidate]:
    """Symmetry-unique sites on the top side of ``slab`` (c along z, a and b in the plane)."""
    d_nn = float(nearest_neighbour_distances(slab).min())
    max_bond = BOND_FACTOR * d_nn
    surface = surface_atoms(slab, probe_radius)
    cell = slab.cell.array
    inv2d = np.linalg.inv(cell[:2, :2])

    # surface atoms and their periodic images, 3x3 around the home cell
    labels = [(int(i), ox, oy) for ox in (-1, 0, 1) for oy in (-1, 0, 1) for i in surface]
    points = np.array([slab.positions[i] + ox * cell[0] + oy * cell[1] for i, ox, oy in labels])
    distance = np.linalg.norm(points[:, None, :] - points[None, :, :], axis=2)
    bonded = (distance <= max_bond) & (distance > 1e-6)

    def in_home(xy: np.ndarray) -> bool:
        frac = xy @ inv2d
        return bool(np.all(frac >= -1e-6) and np.all(frac < 1 - 1e-6))

    def empty(members: list[int]) -> bool:
        """No other surface atom inside the members' projected polygon (given in ring order)."""
        polygon = points[members, :2]
        near = np.nonzero(distance[members[0]] < 2 * max_bond)[0]
        return not any(k not in members and _inside(points[k, :2], polygon) for k in near)

    def candidate(kind: str, members: list[int], xy: np.ndarray | None = None) -> SiteCandidate:
        pos = points[members]
        centre = pos[:, :2].mean(axis=0) if xy is None else xy
        return SiteCandidate(
            kind,
            np.array([centre[0], centre[1], pos[:, 2].mean()]),
            [labels[m][0] for m in members],
            [(labels[m][1], labels[m][2]) for m in members],
        )

    sites = [SiteCandidate("ontop", slab.positions[i].copy(), [int(i)], [(0, 0)]) for i in surface]
    neighbours = {k: set(np.nonzero(bonded[k])[0].tolist()) for k in range(len(points))}
    pairs = sorted({(p, q) for p in range(len(points)) for q in neighbours[p] if p < q})
    for p, q in pairs:
        if in_home((points[p, :2] + points[q, :2]) / 2):
            sites.append(candidate("bridge", [p, q]))
    for p, q in pairs:
        for r in sorted(neighbours[p] & neighbours[q]):
            if r <= q:
                continue
            tri = [p, q, r]
            if in_home(points[tri, :2].mean(axis=0)) and empty(tri):
                sites.append(candidate("fcc", tri))  # or hcp: told apart below
    # 4-fold: a ring p-r-q-s of bonds whose diagonals p-q and r-s are not bonds, on one circle
    seen: set[frozenset[int]] = set()
    for p in range(len(points)):
        for q in range(p + 1, len(points)):
            if bonded[p, q] or distance[p, q] > 2 * max_bond:
                continue
            common = sorted(neighbours[p] & neighbours[q])
            for i, r in enumerate(common):
                for s in common[i + 1 :]:
                    ring = frozenset((p, q, r, s))
                    if bonded[r, s] or ring in seen:
                        continue
                    seen.add(ring)
                    quad = [p, r, q, s]
                    centre = _circumcentre(points[[p, q, r], :2])
                    radius = np.linalg.norm(points[p, :2] - centre)
                    if abs(np.linalg.norm(points[s, :2] - centre) - radius) > 0.1 * d_nn:
                        continue
                    if in_home(centre) and empty(quad):
                        sites.append(candidate("4-fold", quad, centre))
    hollows = [site for site in sites if site.site_type == "fcc"]
    for site, below in zip(hollows, _atoms_below(slab, hollows, d_nn), strict=True):
        site.site_type = "hcp" if below else "fcc"
    return _reduce(slab, sites, symprec)


def _inside(point: np.ndarray, polygon: np.ndarray) -> bool:
    """Is ``point`` strictly inside the convex ``polygon`` (2D vertices in ring order)?"""
    edges = np.roll(polygon, -1, axis=0) - polygon
    rel = point - polygon
    cross = edges[:, 0] * rel[:, 1] - edges[:, 1] * rel[:, 0]
    return bool(np.all(cross > 1e-3) or np.all(cross < -1e-3))


def _circumcentre(triangle: np.ndarray) -> np.ndarray:
    (ax, ay), (bx, by), (cx, cy) = triangle
    d = 2 * (ax * (by - cy) + bx * (cy - ay) + cx * (ay - by))
    ux = (
        (ax**2 + ay**2) * (by - cy) + (bx**2 + by**2) * (cy - ay) + (cx**2 + cy**2) * (ay - by)
    ) / d
    uy = (
        (ax**2 + ay**2) * (cx - bx) + (bx**2 + by**2) * (ax - cx) + (cx**2 + cy**2) * (bx - ax)
    ) / d
    return np.array([ux, uy])


def _atoms_below(slab: Atoms, hollows: list[SiteCandidate], d_nn: float) -> list[bool]:
    """Is there an atom right below each hollow, along the normal of its binding triangle?

    That is the hcp hollow (an atom of the next layer underneath); the fcc hollow has none.
    Measuring along the triangle's own normal keeps the labels right on the tilted (111)
    terraces of stepped surfaces, where straight down (z) meets other atoms.  The atoms near
    the hollows, every periodic image, come from one :func:`workflows.bonding.near_points` call.
    """
    if not hollows:
        return []
    anchors = np.array([site.binding_positions(slab) for site in hollows])  # (h, 3, 3)
    centres = anchors.mean(axis=1)
    normals = np.cross(anchors[:, 1] - anchors[:, 0], anchors[:, 2] - anchors[:, 0])
    normals /= np.linalg.norm(normals, axis=1)[:, None]
    normals[normals[:, 2] < 0] *= -1
    hollow, _, _, vectors = bonding.near_points(slab, centres, 1.3 * d_nn)
    depth = -np.einsum("ij,ij->i", vectors, normals[hollow])
    lateral = np.linalg.norm(vectors + depth[:, None] * normals[hollow], axis=1)
    below = (depth > 0.3) & (depth < 1.2 * d_nn) & (lateral < 0.35 * d_nn)
    return [bool(below[hollow == h].any()) for h in range(len(hollows))]


def _reduce(slab: Atoms, sites: list[SiteCandidate], symprec: float) -> list[SiteCandidate]:
    """Keep one site per orbit of the slab's up-keeping symmetry operations."""
    import spglib

    cell = slab.cell.array
    dataset = spglib.get_symmetry(
        (cell, slab.get_scaled_positions(), slab.numbers), symprec=symprec
    )
    ops = []
    if dataset is not None:
        for rot, trans in zip(dataset["rotations"], dataset["translations"], strict=True):
            if rot[2, 2] == 1 and rot[2, 0] == 0 and rot[2, 1] == 0:
                ops.append((rot, trans))
    if not ops:
        ops = [(np.eye(3, dtype=int), np.zeros(3))]
    inv = np.linalg.inv(cell)
    order = sorted(
        range(len(sites)),
        key=lambda k: (
            SITE_TYPES.index(sites[k].site_type),
            -round(float(sites[k].position[2]), 2),
            tuple(np.round(sites[k].position[:2], 2)),
        ),
    )
    frac = {k: sites[k].position @ inv for k in order}
    assigned: set[int] = set()
    unique: list[SiteCandidate] = []
    tol = max(symprec, 0.05) * 2
    for k in order:
        if k in assigned:
            continue
        images = np.array([rot @ frac[k] + trans for rot, trans in ops])
        orbit = []
        for m in order:
            if m in assigned or sites[m].site_type != sites[k].site_type:
                continue
            delta = images - frac[m]
            delta[:, :2] -= np.round(delta[:, :2])
            if np.min(np.linalg.norm(delta @ cell, axis=1)) < tol:
                orbit.append(m)
        assigned.update(orbit)
        site = sites[k]
        site.multiplicity = len(orbit)
        unique.append(site)
    return unique
