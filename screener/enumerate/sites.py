"""Symmetry-unique adsorption sites on the top side of a slab.

1. Surface atoms are those a probe sphere (radius ``probe_radius``, A) dropped from above touches
   first, atoms having half their shortest bond as radius.  Nothing below the top side is ever
   reached, and the result does not depend on the vacuum size.
2. Among the surface atoms and their in-plane periodic images, a bond is a distance up to
   ``BOND_FACTOR`` x the nearest-neighbour distance: every surface atom is an ontop site, every
   bonded pair a bridge, every mutually bonded triple with no other surface atom inside its
   projection a 3-fold hollow, and every ring of four bonds whose diagonals are not bonds and
   whose atoms lie on one circle (in projection) a 4-fold hollow.
3. A 3-fold hollow is ``hcp`` when an atom of the next layer lies right below it (along the
   hollow's own normal), ``fcc`` otherwise.
4. Sites related by a symmetry operation of the slab that keeps +z up are one site; the size of the
   orbit in the cell is its multiplicity.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from ase import Atoms

from workflows.structures import in_plane_shifts

BOND_FACTOR = 1.3  # an edge longer than this x the nearest-neighbour distance is not a bond
GRID_SPACING = 0.2  # A, probe grid
TYPE_ORDER = ("ontop", "bridge", "fcc", "hcp", "4-fold")


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
    """Shortest distance from every atom to any other (minimum image in the plane)."""
    distances = slab.get_all_distances(mic=True)
    np.fill_diagonal(distances, np.inf)
    return distances.min(axis=1)


def surface_atoms(slab: Atoms, probe_radius: float = 1.0) -> np.ndarray:
    """Indices of the atoms a probe falling from above touches first (sorted)."""
    radii = nearest_neighbour_distances(slab) / 2
    cell = slab.cell.array
    shifts = in_plane_shifts(cell)[:, :2]
    xy = (slab.positions[None, :, :2] + shifts[:, None, :]).reshape(-1, 2)
    z = np.tile(slab.positions[:, 2], len(shifts))
    reach = np.tile(radii + probe_radius, len(shifts))
    owner = np.tile(np.arange(len(slab)), len(shifts))
    na = max(2, int(np.ceil(np.linalg.norm(cell[0]) / GRID_SPACING)))
    nb = max(2, int(np.ceil(np.linalg.norm(cell[1]) / GRID_SPACING)))
    fa, fb = np.meshgrid(np.arange(na) / na, np.arange(nb) / nb, indexing="ij")
    grid = np.stack([fa.ravel(), fb.ravel()], axis=1) @ cell[:2, :2]
    touched: set[int] = set()
    for chunk in np.array_split(grid, max(1, len(grid) // 2000)):
        d2 = ((chunk[:, None, :] - xy[None, :, :]) ** 2).sum(axis=2)
        height = np.where(d2 < reach**2, z + np.sqrt(np.clip(reach**2 - d2, 0, None)), -np.inf)
        first = height.argmax(axis=1)
        ok = np.isfinite(height[np.arange(len(chunk)), first])
        touched.update(owner[first[ok]].tolist())
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
                site = candidate("fcc", tri)
                site.site_type = "hcp" if _atom_below(slab, site, d_nn) else "fcc"
                sites.append(site)
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


def _atom_below(slab: Atoms, site: SiteCandidate, d_nn: float) -> bool:
    """Is there an atom right below the hollow, along the normal of its binding triangle?

    That is the hcp hollow (an atom of the next layer underneath); the fcc hollow has none.
    Measuring along the triangle's own normal keeps the labels right on the tilted (111)
    terraces of stepped surfaces, where straight down (z) meets other atoms.
    """
    anchors = site.binding_positions(slab)
    centre = anchors.mean(axis=0)
    normal = np.cross(anchors[1] - anchors[0], anchors[2] - anchors[0])
    normal /= np.linalg.norm(normal)
    if normal[2] < 0:
        normal = -normal
    cell = slab.cell.array
    shifts = in_plane_shifts(cell)
    vectors = (slab.positions[None, :, :] + shifts[:, None, :] - centre).reshape(-1, 3)
    depth = -vectors @ normal
    lateral = np.linalg.norm(vectors + depth[:, None] * normal, axis=1)
    below = (depth > 0.3) & (depth < 1.2 * d_nn) & (lateral < 0.35 * d_nn)
    return bool(below.any())


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
            TYPE_ORDER.index(sites[k].site_type),
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
