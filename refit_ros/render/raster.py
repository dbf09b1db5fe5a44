"""A vectorised triangle rasteriser with a per-pixel z-buffer (NumPy, CPU).

Triangles are grouped by the size of their pixel bounding box (rounded up to powers of
two), and each group is tested against every pixel centre of its boxes at once with
barycentric coordinates. Every covered pixel centre becomes a fragment carrying its
inverse depth ``1/z`` (linear in screen space); the fragment with the largest ``1/z``,
i.e. the nearest surface, wins each pixel. That depth test is exact per pixel, so people
occlude each other (and themselves) correctly whatever the triangle order.

Conventions: vertices in metres in the camera optical frame (x right, y down, z forward);
pixel ``(u, v)`` has its centre at integer coordinates, as in
:meth:`refit_ros.geometry.intrinsics.Intrinsics.project`.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from refit_ros.geometry.intrinsics import Intrinsics

#: Candidate pixels tested per vectorised batch (bounds the temporary memory to ~100 MB).
_BATCH = 1 << 20
#: Barycentric tolerance: pixel centres exactly on a shared edge belong to both triangles
#: (the depth test then picks one), so meshes have no cracks.
_EDGE_EPS = 1e-5


@dataclasses.dataclass
class Raster:
    """The visible surface of a mesh in an image, stored for covered pixels only.

    Attributes
    ----------
    height, width : int
        Image size in pixels.
    pixel : ndarray, (M,) int64
        Flat index ``v * width + u`` of each covered pixel (each at most once).
    face : ndarray, (M,) int64
        Index of the visible triangle at each covered pixel.
    bary : ndarray, (M, 3) float32
        Perspective-correct barycentric weights of the triangle's three vertices.
    depth : ndarray, (M,) float32
        Camera-frame ``z`` of the visible surface, metres.
    """

    height: int
    width: int
    pixel: np.ndarray
    face: np.ndarray
    bary: np.ndarray
    depth: np.ndarray

    def face_map(self) -> np.ndarray:
        """``H x W`` int64 visible-triangle index, -1 where nothing was drawn."""
        out = np.full(self.height * self.width, -1, dtype=np.int64)
        out[self.pixel] = self.face
        return out.reshape(self.height, self.width)

    def depth_map(self) -> np.ndarray:
        """``H x W`` float32 depth in metres, ``inf`` where nothing was drawn."""
        out = np.full(self.height * self.width, np.inf, dtype=np.float32)
        out[self.pixel] = self.depth
        return out.reshape(self.height, self.width)


def front_facing(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Which counter-clockwise (outward-wound) triangles face a camera at the origin.

    Parameters
    ----------
    vertices : ndarray, (V, 3)
    faces : ndarray, (F, 3) int

    Returns
    -------
    ndarray, (F,) bool
    """
    a, b, c = (vertices[faces[:, k]] for k in range(3))
    normal = np.cross(b - a, c - a)
    return np.einsum("ij,ij->i", normal, a + b + c) < 0.0


def rasterize(vertices: np.ndarray, faces: np.ndarray, intrinsics: Intrinsics,
              near: float = 0.05, cull_back: bool = True,
              face_mask: np.ndarray | None = None) -> Raster:
    """Rasterise a triangle mesh with a per-pixel depth test.

    Parameters
    ----------
    vertices : ndarray, (V, 3)
        Camera-frame positions, metres.
    faces : ndarray, (F, 3) int
        Triangles; with ``cull_back`` they must be wound counter-clockwise seen from
        outside (see :func:`orient_outward`).
    intrinsics : Intrinsics
        Camera; the raster has its ``height x width``.
    near : float
        Triangles with any vertex nearer than this (metres, including everything behind
        the camera) are not drawn.
    cull_back : bool
        Skip triangles facing away from the camera (halves the work on closed meshes).
    face_mask : ndarray, (F,) bool, optional
        Draw only these triangles (e.g. a back-face test the caller already made).

    Returns
    -------
    Raster
    """
    h, w = int(intrinsics.height), int(intrinsics.width)
    vertices = np.asarray(vertices, dtype=np.float64)
    faces = np.asarray(faces, dtype=np.int64)
    zf = vertices[:, 2][faces]
    keep = (zf[:, 0] > near) & (zf[:, 1] > near) & (zf[:, 2] > near)
    if face_mask is not None:
        keep &= np.asarray(face_mask, dtype=bool)
    if cull_back:
        keep &= front_facing(vertices, faces)
    face_ids = np.flatnonzero(keep)
    z = np.where(vertices[:, 2] > near, vertices[:, 2], 1.0)
    uv = intrinsics.project(vertices)
    tri = uv[faces[face_ids]]  # (F', 3, 2)
    inv_z = (1.0 / z)[faces[face_ids]]  # (F', 3)

    # elementwise min/max of the three corners (much faster than reducing a length-3 axis)
    lo = np.ceil(np.minimum(np.minimum(tri[:, 0], tri[:, 1]), tri[:, 2]))
    hi = np.floor(np.maximum(np.maximum(tri[:, 0], tri[:, 1]), tri[:, 2]))
    x0 = np.clip(lo[:, 0], 0, w - 1).astype(np.int64)
    y0 = np.clip(lo[:, 1], 0, h - 1).astype(np.int64)
    x1 = np.clip(hi[:, 0], 0, w - 1).astype(np.int64)
    y1 = np.clip(hi[:, 1], 0, h - 1).astype(np.int64)
    d1 = tri[:, 1] - tri[:, 0]
    d2 = tri[:, 2] - tri[:, 0]
    area = d1[:, 0] * d2[:, 1] - d1[:, 1] * d2[:, 0]
    # A box is empty when no pixel centre lies inside it (or it is off-screen).
    ok = ((hi[:, 0] >= lo[:, 0]) & (hi[:, 1] >= lo[:, 1]) & (hi[:, 0] >= 0) & (hi[:, 1] >= 0)
          & (lo[:, 0] <= w - 1) & (lo[:, 1] <= h - 1) & (np.abs(area) > 1e-12))
    sel = np.flatnonzero(ok)

    frags = _fragments(sel, x0, y0, x1, y1, tri, d1, d2, 1.0 / np.where(ok, area, 1.0), inv_z, w)
    return _depth_test(frags, face_ids, h, w)


def _fragments(sel, x0, y0, x1, y1, tri, d1, d2, inv_area, inv_z, w):
    """All (triangle, pixel) pairs with the pixel centre inside the triangle."""
    bw = x1[sel] - x0[sel] + 1
    bh = y1[sel] - y0[sel] + 1
    # Power-of-two box classes: candidates per triangle are at most 4x its box area.
    kw = np.ceil(np.log2(bw)).astype(np.int64)
    kh = np.ceil(np.log2(bh)).astype(np.int64)
    key = kw * 64 + kh
    order = np.argsort(key, kind="stable")
    bounds = np.flatnonzero(np.diff(key[order])) + 1
    out = []
    for group in np.split(sel[order], bounds):
        if len(group) == 0:
            continue
        sw = 1 << int(np.ceil(np.log2(x1[group[0]] - x0[group[0]] + 1)))
        sh = 1 << int(np.ceil(np.log2(y1[group[0]] - y0[group[0]] + 1)))
        oy, ox = np.divmod(np.arange(sw * sh), sw)
        step = max(1, _BATCH // (sw * sh))
        for start in range(0, len(group), step):
            t = group[start:start + step]
            out.append(_test_boxes(t, ox, oy, x0, y0, x1, y1, tri, d1, d2, inv_area, inv_z, w))
    if not out:
        empty = np.zeros(0)
        return empty.astype(np.int64), empty.astype(np.int64), np.zeros((0, 3)), empty
    return tuple(np.concatenate(parts) for parts in zip(*out))


def _test_boxes(t, ox, oy, x0, y0, x1, y1, tri, d1, d2, inv_area, inv_z, w):
    # Barycentrics in float32 relative to each triangle's first corner (values of a few
    # pixels, so float32 is ample), over the candidates (n triangles x S offsets).
    f32 = np.float32
    bx = (x0[t] - tri[t, 0, 0]).astype(f32)[:, None]
    by = (y0[t] - tri[t, 0, 1]).astype(f32)[:, None]
    qx = bx + ox.astype(f32)[None, :]
    qy = by + oy.astype(f32)[None, :]
    ia = inv_area[t].astype(f32)[:, None]
    l1 = (qx * d2[t, 1].astype(f32)[:, None] - qy * d2[t, 0].astype(f32)[:, None]) * ia
    l2 = (qy * d1[t, 0].astype(f32)[:, None] - qx * d1[t, 1].astype(f32)[:, None]) * ia
    in_box = ((ox[None, :] <= (x1[t] - x0[t])[:, None])
              & (oy[None, :] <= (y1[t] - y0[t])[:, None]))
    inside = (l1 >= -_EDGE_EPS) & (l2 >= -_EDGE_EPS) & (l1 + l2 <= 1.0 + _EDGE_EPS) & in_box
    r, c = np.nonzero(inside)
    tri_idx = t[r]
    b1 = l1[r, c].astype(np.float64)
    b2 = l2[r, c].astype(np.float64)
    lam = np.stack([1.0 - b1 - b2, b1, b2], axis=1)
    # 1/z is affine in screen space; weighting the vertices' 1/z by screen barycentrics
    # gives the exact inverse depth of the surface at the pixel centre.
    wz = lam * inv_z[tri_idx]
    pix = (y0[tri_idx] + oy[c]) * w + x0[tri_idx] + ox[c]
    return tri_idx, pix, wz, wz[:, 0] + wz[:, 1] + wz[:, 2]


def _depth_test(frags, face_ids, h, w) -> Raster:
    tri_idx, pix, wz, inv_depth = frags
    if len(pix) == 0:
        return Raster(h, w, pix, pix, np.zeros((0, 3), np.float32), np.zeros(0, np.float32))
    best = np.zeros(h * w, dtype=np.float64)
    np.maximum.at(best, pix, inv_depth)
    win = np.flatnonzero(inv_depth == best[pix])
    # Exact ties (a pixel centre on a shared edge) keep one fragment per pixel.
    pixel, first = np.unique(pix[win], return_index=True)
    win = win[first]
    bary = (wz[win] / inv_depth[win, None]).astype(np.float32)
    return Raster(h, w, pixel, face_ids[tri_idx[win]], bary,
                  (1.0 / inv_depth[win]).astype(np.float32))


def orient_outward(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Faces re-wound counter-clockwise seen from outside if the mesh encloses negative volume.

    Parameters
    ----------
    vertices : ndarray, (V, 3)
    faces : ndarray, (F, 3) int

    Returns
    -------
    ndarray, (F, 3) int
        ``faces`` itself, or a copy with two columns swapped.
    """
    a, b, c = (vertices[faces[:, k]] for k in range(3))
    volume = np.einsum("ij,ij->", a, np.cross(b, c))
    return faces if volume >= 0 else faces[:, [0, 2, 1]]
