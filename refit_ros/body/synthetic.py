"""A deterministic, structurally valid stand-in for SMPL, for tests only.

It has SMPL's array shapes and conventions (6890 vertices, 13776 faces of a closed genus-0
mesh, SMPL's 24-joint tree, ``shapedirs`` (6890, 3, 10), ``posedirs`` (6890, 3, 207),
``J_regressor`` (24, 6890), ``weights`` (6890, 24)), so it runs through smplx's real SMPL
loader and kinematics. Its geometry is an ellipsoid around an SMPL-like T-pose skeleton:
not a body, and not derived from SMPL. Generated in well under a second; never committed.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

from refit_ros.body.base import SMPL_PARENTS

NUM_VERTICES = 6890
NUM_FACES = 13776
_RINGS, _SEGMENTS = 84, 82  # 2 poles + 84 x 82 ring vertices = 6890; 2 x 84 x 82 faces

# A coarse SMPL-like T-pose skeleton (metres, y up, +x = body's left), left side only.
_LEFT_JOINTS = {
    1: (0.07, -0.09, 0.0), 4: (0.10, -0.47, 0.0), 7: (0.08, -0.88, -0.03),
    10: (0.12, -0.93, 0.10), 13: (0.08, 0.42, 0.0), 16: (0.17, 0.44, 0.0),
    18: (0.43, 0.42, 0.0), 20: (0.68, 0.42, 0.0), 22: (0.76, 0.42, 0.0),
}
_MID_JOINTS = {0: (0.0, 0.0, 0.0), 3: (0.0, 0.11, 0.0), 6: (0.0, 0.25, 0.0),
               9: (0.0, 0.31, 0.0), 12: (0.0, 0.52, 0.0), 15: (0.0, 0.60, 0.03)}
_GENDER_SEEDS = {"neutral": (0, 1.0), "male": (1, 1.05), "female": (2, 0.95)}


def _skeleton() -> np.ndarray:
    joints = np.zeros((24, 3))
    for j, p in _MID_JOINTS.items():
        joints[j] = p
    for j, (x, y, z) in _LEFT_JOINTS.items():
        joints[j] = (x, y, z)
        joints[j + 1] = (-x, y, z)  # SMPL numbers each right joint after its left twin
    return joints


def _sphere() -> tuple[np.ndarray, np.ndarray]:
    """Unit UV sphere: 6890 vertices, 13776 outward (counter-clockwise) triangles."""
    theta = np.linspace(0.0, np.pi, _RINGS + 2)[1:-1]
    phi = np.linspace(0.0, 2 * np.pi, _SEGMENTS, endpoint=False)
    t, p = np.meshgrid(theta, phi, indexing="ij")
    ring = np.stack([np.sin(t) * np.cos(p), np.cos(t), np.sin(t) * np.sin(p)], -1).reshape(-1, 3)
    verts = np.concatenate([[[0.0, 1.0, 0.0]], ring, [[0.0, -1.0, 0.0]]])
    s = _SEGMENTS
    idx = lambda r, k: 1 + r * s + (k % s)  # noqa: E731
    faces = []
    for k in range(s):
        faces.append((0, idx(0, k + 1), idx(0, k)))
        faces.append((len(verts) - 1, idx(_RINGS - 1, k), idx(_RINGS - 1, k + 1)))
        for r in range(_RINGS - 1):
            a, b = idx(r, k), idx(r, k + 1)
            c, d = idx(r + 1, k), idx(r + 1, k + 1)
            faces += [(a, b, d), (a, d, c)]
    return verts, np.asarray(faces, dtype=np.int64)


def synthetic_smpl_arrays(gender: str = "neutral") -> dict[str, np.ndarray]:
    """The synthetic model of ``gender`` as plain arrays under smplx's key names.

    Returns
    -------
    dict of str to np.ndarray
        ``v_template`` (6890, 3) f64, ``f`` (13776, 3) uint32, ``shapedirs``
        (6890, 3, 10), ``posedirs`` (6890, 3, 207) f32, ``J_regressor`` (24, 6890),
        ``weights`` (6890, 24), ``kintree_table`` (2, 24) int64 (root parent 2**32 - 1).
    """
    seed, scale = _GENDER_SEEDS[gender]
    rng = np.random.default_rng(seed)
    unit, faces = _sphere()
    joints = _skeleton() * scale
    centre = np.array([0.0, -0.15, 0.0]) * scale
    verts = centre + unit * np.array([0.85, 0.85, 0.15]) * scale

    # Skinning weights: Gaussian in the distance to each joint, 4 largest kept.
    d2 = ((verts[:, None] - joints[None]) ** 2).sum(-1)
    logits = -d2 / (2 * 0.08**2)
    w = np.exp(logits - logits.max(1, keepdims=True))
    w[w < np.sort(w, axis=1)[:, -4:-3]] = 0.0
    weights = w / w.sum(1, keepdims=True)

    # Joint regressor: inverse-distance average of each joint's 8 nearest vertices.
    jreg = np.zeros((24, NUM_VERTICES))
    for j in range(24):
        near = np.argsort(d2[:, j])[:8]
        inv = 1.0 / (np.sqrt(d2[near, j]) + 1e-3)
        jreg[j, near] = inv / inv.sum()

    # Shape: a height and a width direction, then smooth random fields.
    shapedirs = np.zeros((NUM_VERTICES, 3, 10))
    shapedirs[:, 1, 0] = 0.05 * (verts[:, 1] - centre[1])
    shapedirs[:, 0, 1] = 0.04 * verts[:, 0]
    for k in range(2, 10):
        freq = rng.normal(0.0, 3.0, (3, 3))
        phase = rng.uniform(0, 2 * np.pi, 3)
        shapedirs[:, :, k] = 0.01 * np.sin(verts @ freq + phase)
    posedirs = rng.normal(0.0, 1e-3, (NUM_VERTICES, 3, 207)).astype(np.float32)

    kintree = np.stack([np.array(SMPL_PARENTS, np.int64), np.arange(24)])
    kintree[0, 0] = 2**32 - 1
    return {
        "v_template": verts, "f": faces.astype(np.uint32), "shapedirs": shapedirs,
        "posedirs": posedirs, "J_regressor": jreg, "weights": weights, "kintree_table": kintree,
    }


def write_synthetic_smpl(folder: str | Path, genders=("neutral", "male", "female")) -> Path:
    """Write plain-numpy ``SMPL_{GENDER}.pkl`` files (smplx's names) into ``folder``.

    Parameters
    ----------
    folder : str or Path
        Created if missing (a test's tmp dir).
    genders : iterable of str
        Which files to write.

    Returns
    -------
    Path
        ``folder``.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for gender in genders:
        with open(folder / f"SMPL_{gender.upper()}.pkl", "wb") as fh:
            pickle.dump(synthetic_smpl_arrays(gender), fh, protocol=pickle.HIGHEST_PROTOCOL)
    return folder
