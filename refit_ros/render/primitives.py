"""Closed ellipsoid meshes: stand-in geometry for renderer tests and benchmarks.

These are not body models; they only give the rasteriser realistic triangle counts and
sizes (a "mannequin" of ellipsoids has about as many vertices as SMPL).
"""

from __future__ import annotations

import numpy as np


def ellipsoid(center, radii, n_lat: int = 16, n_lon: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """A closed UV ellipsoid with outward (counter-clockwise) triangle winding.

    Parameters
    ----------
    center : array-like, (3,)
        Centre in metres.
    radii : array-like, (3,)
        Semi-axes along x, y, z in metres.
    n_lat, n_lon : int
        Latitude bands (>= 2) and longitude segments (>= 3).

    Returns
    -------
    vertices : ndarray, (2 + (n_lat - 1) * n_lon, 3) float64
    faces : ndarray, (2 * n_lon * (n_lat - 1), 3) int64
    """
    if n_lat < 2 or n_lon < 3:
        raise ValueError(f"ellipsoid needs n_lat >= 2 and n_lon >= 3, got {n_lat}, {n_lon}")
    theta = np.pi * np.arange(1, n_lat) / n_lat  # polar angle of each inner ring
    phi = 2.0 * np.pi * np.arange(n_lon) / n_lon
    st, ct = np.sin(theta)[:, None], np.cos(theta)[:, None]
    ct = np.broadcast_to(ct, (n_lat - 1, n_lon))
    ring = np.stack([st * np.cos(phi), st * np.sin(phi), ct], -1)
    unit = np.concatenate([[[0.0, 0.0, 1.0]], ring.reshape(-1, 3), [[0.0, 0.0, -1.0]]])
    vertices = unit * np.asarray(radii, dtype=np.float64) + np.asarray(center, dtype=np.float64)

    top, bottom = 0, 1 + (n_lat - 1) * n_lon
    j = np.arange(n_lon)
    jn = (j + 1) % n_lon
    faces = [np.stack([np.full(n_lon, top), 1 + j, 1 + jn], 1)]
    for i in range(n_lat - 2):
        a, b = 1 + i * n_lon + j, 1 + i * n_lon + jn  # ring i
        c, d = a + n_lon, b + n_lon  # ring i + 1 (further from the top pole)
        faces += [np.stack([a, c, d], 1), np.stack([a, d, b], 1)]
    last = 1 + (n_lat - 2) * n_lon
    faces.append(np.stack([np.full(n_lon, bottom), last + jn, last + j], 1))
    return vertices, np.concatenate(faces).astype(np.int64)


def merge_meshes(meshes) -> tuple[np.ndarray, np.ndarray]:
    """Concatenate ``[(V_i x 3, F_i x 3), ...]`` into one mesh (face indices offset)."""
    verts, faces, offset = [], [], 0
    for v, f in meshes:
        verts.append(np.asarray(v, dtype=np.float64))
        faces.append(np.asarray(f, dtype=np.int64) + offset)
        offset += len(v)
    return np.concatenate(verts), np.concatenate(faces)


def mannequin(position, height: float = 1.7, detail: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """A standing figure of 10 ellipsoids in the camera optical frame (y down, z forward).

    Parameters
    ----------
    position : array-like, (3,)
        Point between the feet, metres.
    height : float
        Figure height in metres.
    detail : int
        1 gives about 7,000 vertices, 2 about 13,000.

    Returns
    -------
    vertices : ndarray, (V, 3) float64
    faces : ndarray, (F, 3) int64
    """
    s = height / 1.7
    lat, lon = (22, 32) if detail <= 1 else (30, 44)
    # (centre x, y (up is negative), z) and radii, metres, for a 1.7 m figure
    parts = [
        ((0.0, -1.15, 0.0), (0.18, 0.30, 0.11)),  # torso
        ((0.0, -1.58, 0.0), (0.09, 0.12, 0.10)),  # head
        ((-0.24, -1.22, 0.0), (0.05, 0.16, 0.05)), ((0.24, -1.22, 0.0), (0.05, 0.16, 0.05)),
        ((-0.26, -0.92, 0.0), (0.04, 0.15, 0.04)), ((0.26, -0.92, 0.0), (0.04, 0.15, 0.04)),
        ((-0.10, -0.64, 0.0), (0.07, 0.22, 0.07)), ((0.10, -0.64, 0.0), (0.07, 0.22, 0.07)),
        ((-0.10, -0.22, 0.0), (0.05, 0.21, 0.05)), ((0.10, -0.22, 0.0), (0.05, 0.21, 0.05)),
    ]
    p = np.asarray(position, dtype=np.float64)
    meshes = [ellipsoid(p + s * np.array(c), s * np.array(r), lat, lon) for c, r in parts]
    return merge_meshes(meshes)
