"""The CPU overlay renderer: per-pixel depth test, near clipping, colours, annotations."""

from __future__ import annotations

import numpy as np
import pytest

from refit_ros.geometry.intrinsics import Intrinsics
from refit_ros.pipeline.types import Body, FrameResult
from refit_ros.render.annotate import track_color
from refit_ros.render.overlay import OverlayStyle, draw_meshes, render_overlay
from refit_ros.render.primitives import ellipsoid, mannequin
from refit_ros.render.raster import orient_outward, rasterize

INTR = Intrinsics(300.0, 300.0, 79.5, 59.5, 160, 120)
FLAT = OverlayStyle(alpha=1.0, ambient=1.0)  # unshaded, opaque: pixels equal the colours
RED, BLUE = (255, 0, 0), (0, 0, 255)


def _grey(h=120, w=160):
    return np.full((h, w, 3), 128, np.uint8)


def _quad(corners):
    """Two triangles over four 3D corners given in order around the quad."""
    return np.asarray(corners, float), np.array([[0, 1, 2], [0, 2, 3]])


def test_nearer_mesh_wins_whatever_the_order():
    near = ellipsoid((-0.05, 0.0, 2.0), (0.2, 0.2, 0.2))
    far = ellipsoid((0.05, 0.0, 3.0), (0.3, 0.3, 0.3))
    faces = near[1]
    for order in ((near, far, RED, BLUE), (far, near, BLUE, RED)):
        out = draw_meshes(_grey(), [order[0][0], order[1][0]], faces, INTR, order[2:], FLAT)
        assert tuple(out[60, 80]) == RED  # overlap, nearer sphere in front
        assert tuple(out[60, 110]) == BLUE  # only the far sphere reaches here
        assert tuple(out[2, 2]) == (128, 128, 128)


def test_interpenetrating_surfaces_resolved_per_pixel():
    # Two planes crossing at x = 0: A is nearer on the left, B on the right. Sorting whole
    # meshes (or triangles) by depth cannot draw this; a per-pixel z-buffer can.
    a = _quad([(-1, -1, 2.5), (1, -1, 3.5), (1, 1, 3.5), (-1, 1, 2.5)])
    b = _quad([(-1, -1, 3.5), (1, -1, 2.5), (1, 1, 2.5), (-1, 1, 3.5)])
    verts = np.concatenate([a[0], b[0]])
    faces = np.concatenate([a[1], b[1] + 4])
    r = rasterize(verts, faces, INTR, cull_back=False)
    fmap = r.face_map()
    assert (fmap[40:80, 20:70] < 2).all() and (fmap[40:80, 90:140] >= 2).all()
    depth = r.depth_map()
    # plane A: z = 3 + 0.5 x; at the pixel column u, x / z = (u - cx) / fx
    u = 40
    k = (u - INTR.cx) / INTR.fx
    assert depth[60, u] == pytest.approx(3.0 / (1 - 0.5 * k), rel=1e-5)


def test_coverage_is_exact_and_crack_free():
    # A fronto-parallel square split along its diagonal: exactly the pixel centres inside
    # its projection are drawn, including those on the shared diagonal.
    z = 2.0
    u0, u1, v0, v1 = 30.3, 90.7, 20.5, 70.2  # pixel bounds, not on pixel centres
    corners = [((u - INTR.cx) * z / INTR.fx, (v - INTR.cy) * z / INTR.fy, z)
               for u, v in ((u0, v0), (u0, v1), (u1, v1), (u1, v0))]
    verts, faces = _quad(corners)
    r = rasterize(verts, faces, INTR, cull_back=False)
    expected = np.zeros((120, 160), bool)
    expected[21:71, 31:91] = True
    assert np.array_equal(r.face_map() >= 0, expected)
    assert np.allclose(r.depth, z) and np.allclose(r.bary.sum(axis=1), 1.0, atol=1e-5)


def test_mesh_behind_camera_is_not_drawn():
    v, f = ellipsoid((0.0, 0.0, -3.0), (0.5, 0.5, 0.5))
    img = _grey()
    out = draw_meshes(img, [v], f, INTR, [RED])
    assert np.array_equal(out, img)
    assert len(rasterize(v, f, INTR).pixel) == 0


def test_output_shape_dtype_and_input_untouched():
    img = np.random.default_rng(0).integers(0, 255, (120, 160, 3), dtype=np.uint8)
    before = img.copy()
    v, f = mannequin((0.0, 0.85, 4.0))
    out = draw_meshes(img, [v], f, INTR, [RED])
    assert out.shape == img.shape and out.dtype == np.uint8
    assert np.array_equal(img, before)
    assert (out != img).any(axis=2).sum() > 500


def test_shading_is_lambert_and_blend_is_partial():
    v, f = ellipsoid((0.0, 0.0, 2.0), (0.3, 0.3, 0.3), 24, 48)
    style = OverlayStyle(alpha=0.5, ambient=0.2, light=(0.0, 0.0, -1.0))
    out = draw_meshes(np.zeros((120, 160, 3), np.uint8), [v], f, INTR, [(200, 200, 200)], style)
    centre = out[60, 80].astype(int)
    assert abs(centre[0] - 100) <= 2  # facing the light: full brightness, half opacity
    rim = out[60, 80 + 43].astype(int)  # near the silhouette: darker
    assert 0 < rim[0] < centre[0] - 20


def test_reduced_resolution_path_matches_full():
    intr = Intrinsics.fallback(1600, 1200)
    v, f = ellipsoid((0.0, 0.0, 3.0), (0.4, 0.4, 0.4))
    img = np.zeros((1200, 1600, 3), np.uint8)
    full = draw_meshes(img, [v], f, intr, [RED], OverlayStyle(max_side=0))
    small = draw_meshes(img, [v], f, intr, [RED], OverlayStyle(max_side=800))
    covered_full = full.any(axis=2)
    covered_small = small.any(axis=2)
    assert (covered_full != covered_small).mean() < 0.002  # only a few silhouette pixels
    assert np.abs(full[600, 800].astype(int) - small[600, 800]).max() <= 3


def test_inward_wound_mesh_is_reoriented():
    v, f = ellipsoid((0.0, 0.0, 2.0), (0.3, 0.3, 0.3))
    flipped = f[:, ::-1]
    assert np.array_equal(orient_outward(v, flipped), flipped[:, [0, 2, 1]])
    a = draw_meshes(_grey(), [v], f, INTR, [RED])
    b = draw_meshes(_grey(), [v], flipped, INTR, [RED])
    assert np.abs(a.astype(int) - b).max() <= 1


def test_render_overlay_draws_boxes_skeleton_and_track_colours():
    v, f = mannequin((0.0, 0.85, 5.0))
    joints = np.linspace([0, -0.85, 5.0], [0, 0.85, 5.0], 24)
    body = Body(track_id=3, body_model="test", gender="neutral", pose=np.zeros(72),
                betas=np.zeros(10), transl=np.array([0, 0.85, 5.0]), joints=joints,
                vertices=v, bbox=np.array([40.0, 5.0, 120.0, 115.0]), score=0.9)
    result = FrameResult([body], f, INTR, {"total": 1.0})
    style = OverlayStyle(mesh=False, skeleton=True, boxes=True)
    out = render_overlay(_grey(), result, style)
    assert tuple(out[60, 40]) == track_color(3)  # box edge
    assert (out[60, 75:85] == 255).all(axis=1).any()  # a white joint dot on the centre line
    meshed = render_overlay(_grey(), result, OverlayStyle(alpha=1.0, ambient=1.0, boxes=False))
    assert tuple(meshed[40, 80]) == track_color(3)  # torso
    with pytest.raises(ValueError, match="intrinsics"):
        render_overlay(_grey(100, 100), result)


def test_palette_is_stable_and_untracked_is_grey():
    assert track_color(1) == track_color(1) != track_color(2)
    assert track_color(-1) == (180, 180, 180)


def test_skeleton_tree_is_smpl():
    from refit_ros.body.base import SMPL_PARENTS
    from refit_ros.render.annotate import SMPL_PARENTS as drawn

    assert drawn == SMPL_PARENTS
