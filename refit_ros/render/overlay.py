"""Shaded body meshes blended over the camera image (CPU, headless).

Each body is drawn in its track's colour with Lambert shading from a fixed light,
smoothly interpolated across triangles, and blended semi-transparently over the image.
All bodies go through one z-buffer (:mod:`refit_ros.render.raster`), so the nearer person
hides the farther one pixel by pixel. Large images are rasterised at a reduced size
(``OverlayStyle.max_side``) and the colour layer is upsampled before blending.
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

import cv2
import numpy as np

from refit_ros.geometry.intrinsics import Intrinsics
from refit_ros.pipeline.types import FrameResult
from refit_ros.render.annotate import draw_box, draw_skeleton, track_color
from refit_ros.render.raster import rasterize


@dataclasses.dataclass(frozen=True)
class OverlayStyle:
    """How :func:`render_overlay` draws.

    Attributes
    ----------
    mesh, skeleton, boxes : bool
        Draw the shaded meshes / the 24 SMPL joints and links / the boxes and track ids.
    alpha : float
        Opacity of the meshes over the image, in [0, 1].
    ambient : float
        Brightness of surfaces facing away from the light, in [0, 1].
    light : (3,) float
        Direction from the surface towards the light in the camera frame (x right, y
        down, z forward): the default is above, right of and behind the camera.
    max_side : int
        Rasterise at most this many pixels along the longer image side (0: full size).
    """

    mesh: bool = True
    skeleton: bool = False
    boxes: bool = True
    alpha: float = 0.8
    ambient: float = 0.3
    light: tuple[float, float, float] = (0.35, -0.6, -1.0)
    max_side: int = 1280


def render_overlay(image_rgb: np.ndarray, result: FrameResult,
                   style: OverlayStyle = OverlayStyle()) -> np.ndarray:
    """Draw the bodies of one frame over its image.

    Parameters
    ----------
    image_rgb : ndarray, (H, W, 3) uint8
        The frame the bodies were recovered from (not modified).
    result : FrameResult
        Its bodies, mesh faces and the intrinsics they were recovered with.
    style : OverlayStyle

    Returns
    -------
    ndarray, (H, W, 3) uint8
        RGB overlay.
    """
    intr = result.intrinsics
    _check_size(image_rgb, intr)
    bodies = [b for b in result.bodies if b.vertices is not None] if style.mesh else []
    out = draw_meshes(image_rgb, [b.vertices for b in bodies], result.faces, intr,
                      [track_color(b.track_id) for b in bodies], style)
    for body in result.bodies:
        color = track_color(body.track_id)
        if style.skeleton:
            draw_skeleton(out, body.joints, intr, color)
        if style.boxes:
            draw_box(out, body.bbox, body.track_id, color)
    return out


def draw_meshes(image_rgb: np.ndarray, vertices: Sequence[np.ndarray], faces: np.ndarray,
                intrinsics: Intrinsics, colors: Sequence[tuple[int, int, int]],
                style: OverlayStyle = OverlayStyle()) -> np.ndarray:
    """Blend shaded meshes over an image with a shared z-buffer.

    Parameters
    ----------
    image_rgb : ndarray, (H, W, 3) uint8
    vertices : sequence of ndarray, each (V, 3)
        Camera-frame vertices of each mesh, metres.
    faces : ndarray, (F, 3) int
        Triangles shared by all meshes.
    intrinsics : Intrinsics
        Camera of the image (same size).
    colors : sequence of (3,) int
        RGB colour of each mesh.
    style : OverlayStyle

    Returns
    -------
    ndarray, (H, W, 3) uint8
        A new RGB image.
    """
    _check_size(image_rgb, intrinsics)
    out = np.array(image_rgb, dtype=np.uint8, copy=True, order="C")
    if len(vertices) == 0:
        return out
    h, w = out.shape[:2]
    scale = min(1.0, style.max_side / max(h, w)) if style.max_side > 0 else 1.0
    rh, rw = max(1, int(round(h * scale))), max(1, int(round(w * scale)))
    intr = intrinsics if (rh, rw) == (h, w) else _resized(intrinsics, rw / w, rh / h, rw, rh)

    faces = np.asarray(faces, dtype=np.int64)
    all_v, all_f, vert_rgb, front = [], [], [], []
    offset = 0
    for verts, color in zip(vertices, colors):
        verts = np.asarray(verts, dtype=np.float64)
        f, normals, facing = _oriented_faces(verts, faces)
        shade = _vertex_shading(len(verts), f, normals, style)
        vert_rgb.append(shade[:, None] * np.asarray(color, dtype=np.float32)[None, :])
        all_v.append(verts)
        all_f.append(f + offset)
        front.append(facing)
        offset += len(verts)
    all_f = np.concatenate(all_f)
    raster = rasterize(np.concatenate(all_v), all_f, intr, cull_back=False,
                       face_mask=np.concatenate(front))
    if len(raster.pixel) == 0:
        return out
    rgb = np.concatenate(vert_rgb)[all_f[raster.face]]  # (M, 3 vertices, 3 channels)
    pixel_rgb = np.einsum("mk,mkc->mc", raster.bary, rgb)

    if (rh, rw) == (h, w):
        flat = out.reshape(-1, 3)
        base = flat[raster.pixel].astype(np.float32)
        flat[raster.pixel] = _blend(base, pixel_rgb, style.alpha)
        return out
    layer = np.zeros((rh * rw, 4), dtype=np.float32)
    layer[raster.pixel, :3] = pixel_rgb
    layer[raster.pixel, 3] = 1.0
    layer = cv2.resize(layer.reshape(rh, rw, 4), (w, h), interpolation=cv2.INTER_LINEAR)
    layer = layer.reshape(-1, 4)
    covered = np.flatnonzero(layer[:, 3] > 1e-3)
    cover = layer[covered, 3:]
    # the colour was premultiplied by coverage when resampled; undo that at the edges
    color = layer[covered, :3] / cover
    flat = out.reshape(-1, 3)
    a = cover * style.alpha
    flat[covered] = np.clip(flat[covered] * (1.0 - a) + color * a + 0.5, 0, 255).astype(np.uint8)
    return out


def _blend(base: np.ndarray, color: np.ndarray, alpha: float) -> np.ndarray:
    return np.clip(base * (1.0 - alpha) + color * alpha + 0.5, 0, 255).astype(np.uint8)


def _oriented_faces(verts: np.ndarray, faces: np.ndarray):
    """Faces wound outward, their area-scaled normals (F x 3), and which face the camera.

    Same result as ``raster.orient_outward`` followed by ``raster.front_facing``, with the
    triangle corners gathered once.
    """
    a, b, c = (verts[faces[:, k]] for k in range(3))
    normals = np.cross(b - a, c - a)  # length = 2 x area
    if np.einsum("ij,ij->", a, normals) < 0:  # 6 x enclosed volume < 0: wound inward
        faces, normals = faces[:, [0, 2, 1]], -normals
    facing = np.einsum("ij,ij->i", normals, a + b + c) < 0.0
    return faces, normals, facing


def _vertex_shading(num_vertices: int, faces: np.ndarray, face_normals: np.ndarray,
                    style: OverlayStyle) -> np.ndarray:
    """``V`` float32 brightness in [ambient, 1]: Lambert on area-weighted vertex normals."""
    idx = faces.ravel()
    normals = np.stack([np.bincount(idx, np.repeat(face_normals[:, k], 3), minlength=num_vertices)
                        for k in range(3)], axis=1)
    normals /= np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-12)
    light = np.asarray(style.light, dtype=np.float64)
    light = light / np.linalg.norm(light)
    lambert = np.clip(normals @ light, 0.0, 1.0)
    return (style.ambient + (1.0 - style.ambient) * lambert).astype(np.float32)


def _resized(intr: Intrinsics, sx: float, sy: float, width: int, height: int) -> Intrinsics:
    return Intrinsics(intr.fx * sx, intr.fy * sy, (intr.cx + 0.5) * sx - 0.5,
                      (intr.cy + 0.5) * sy - 0.5, width, height, intr.is_fallback)


def _check_size(image: np.ndarray, intr: Intrinsics) -> None:
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(
            f"overlay needs an H x W x 3 uint8 RGB image, got {image.shape} {image.dtype}")
    if image.shape[:2] != (intr.height, intr.width):
        raise ValueError(
            f"image is {image.shape[1]}x{image.shape[0]} but the intrinsics are for "
            f"{intr.width}x{intr.height}; pass the intrinsics of this image (Intrinsics.scaled)"
        )
