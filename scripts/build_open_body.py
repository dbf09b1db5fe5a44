#!/usr/bin/env python3
"""Regenerate ``refit_ros/body/data/open_body_v1.npz`` (the shipped open body) from ``anny``.

Only this script needs ``anny`` (Apache-2.0 code, CC0 MakeHuman assets); refit_ros itself
never imports it. It uses anny's own CC0/Apache data only, never anny's separately
downloaded non-commercial SMPL correspondence. Run it in a throw-away venv::

    python3.11 -m venv /tmp/annyvenv
    /tmp/annyvenv/bin/pip install torch==2.13.0 numpy==2.4.6 scipy smplx==0.1.28 \
        pyyaml pillow requests safetensors trimesh roma
    /tmp/annyvenv/bin/pip install --no-deps anny==0.6.2      # skips warp-lang
    ANNY_CACHE_DIR=/tmp/anny_cache PYTHONPATH=. /tmp/annyvenv/bin/python \
        scripts/build_open_body.py --out refit_ros/body/data/open_body_v1.npz

The first anny build takes ~1.5 min and writes ~790 MB to ``ANNY_CACHE_DIR``; this script
then takes about a minute more. The output is deterministic for a given seed.

What it does:
1. samples adult phenotypes (ages 20-60, any gender) from anny's WHO-calibrated
   ``SimpleShapeDistribution`` and builds each rest (A-pose) mesh;
2. converts to SMPL's frame (metres, +y up, +z front, body's left +x) and poses every
   sample into SMPL's T-pose (arms horizontal, palms down, legs straight) with anny's own
   104-bone skinning, forward kinematics done by smplx's ``batch_rigid_transform``;
3. merges the 104 bones into SMPL's 24 joints (skin weights summed, joint = the head of
   the bone that starts that segment) and centres each sample on its pelvis joint;
4. PCA over [vertices, joints] of the T-posed samples, rotated so that beta[0] is stature
   (one unit = one standard deviation of adult height; the other betas leave height
   unchanged to first order);
5. solves a sparse joint regressor that reproduces the joints exactly for every betas;
6. places 67 markers at the SSM mocap-marker places ReFit's SMPL markers use, and the 33
   BlazePose landmarks (limb joints as joints, face/hand/foot points as vertices).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from open_body_markers import place_landmarks, place_markers  # noqa: E402  (scripts/)

from refit_ros.body.base import SMPL_JOINT_NAMES, SMPL_PARENTS  # noqa: E402

log = logging.getLogger("build_open_body")

NAME = "refit_open_body_v1"
# anny (x right-of-viewer = body's left, y = backwards, z up) -> SMPL (x left, y up, z front)
ANNY_TO_SMPL = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])

#: anny bone -> SMPL joint whose segment it belongs to (side suffix added below).
_MID_BONES = {
    "root": "pelvis", "pelvis.L": "pelvis", "pelvis.R": "pelvis", "spine05": "pelvis",
    "spine04": "pelvis", "spine03": "spine1", "spine02": "spine2", "spine01": "spine3",
    "neck01": "neck", "neck02": "neck", "neck03": "neck", "head": "head", "eye.L": "head",
    "eye.R": "head",
}
_SIDE_BONES = {
    "upperleg01": "hip", "upperleg02": "hip", "lowerleg01": "knee", "lowerleg02": "knee",
    "foot": "ankle", "toe": "foot", "clavicle": "collar", "shoulder01": "collar",
    "upperarm01": "shoulder", "upperarm02": "shoulder", "lowerarm01": "elbow",
    "lowerarm02": "elbow", "wrist": "wrist", "metacarpal": "wrist", "finger": "hand",
}
#: SMPL joint -> anny bone whose head is the joint (sided names use {s} = L / R).
_JOINT_BONE = {
    "pelvis": "root", "spine1": "spine03", "spine2": "spine02", "spine3": "spine01",
    "neck": "neck01", "head": "head", "hip": "upperleg01.{s}", "knee": "lowerleg01.{s}",
    "ankle": "foot.{s}", "collar": "clavicle.{s}", "shoulder": "upperarm01.{s}",
    "elbow": "lowerarm01.{s}", "wrist": "wrist.{s}",
}


def smpl_joint_of_bone(label: str) -> int:
    """SMPL joint index of an anny bone label."""
    if label in _MID_BONES:
        return SMPL_JOINT_NAMES.index(_MID_BONES[label])
    stem, side = label.rsplit(".", 1)
    prefix = "left_" if side == "L" else "right_"
    for key, joint in _SIDE_BONES.items():
        if stem.startswith(key):
            return SMPL_JOINT_NAMES.index(prefix + joint)
    raise KeyError(f"anny bone {label!r} has no SMPL joint")


def smpl_joints_from_heads(heads: np.ndarray, labels: list[str]) -> np.ndarray:
    """N x 24 x 3 SMPL joints from N x 104 x 3 anny bone heads."""
    idx = {lab: i for i, lab in enumerate(labels)}
    out = np.zeros((heads.shape[0], 24, 3))
    for j, name in enumerate(SMPL_JOINT_NAMES):
        sided = name.startswith(("left_", "right_"))
        side, _, stem = name.partition("_") if sided else ("", "", name)
        s = "L" if side == "left" else "R"
        if stem == "foot":  # ball of the foot: mean of the toes' first bones
            out[:, j] = np.mean([heads[:, idx[f"toe{k}-1.{s}"]] for k in range(1, 6)], 0)
        elif stem == "hand":  # knuckles: mean of the four fingers' first bones
            out[:, j] = np.mean([heads[:, idx[f"finger{k}-1.{s}"]] for k in range(2, 6)], 0)
        else:
            out[:, j] = heads[:, idx[_JOINT_BONE[stem].format(s=s)]]
    return out


# ----------------------------------------------------------------------------- anny
def build_anny():
    import anny
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "fallback to lbs": warp is deliberately absent
        return anny.Anny(skinning_method="lbs")


def sample_rest_meshes(model, count: int, seed: int, age_range=(20.0, 60.0)):
    """Adult rest (A-pose) meshes and bone heads in SMPL's frame, float64."""
    from anny.shape_distribution import SimpleShapeDistribution
    torch.manual_seed(seed)
    f64 = dict(dtype=torch.float64)
    ages = torch.distributions.Uniform(torch.tensor(age_range[0], **f64),
                                       torch.tensor(age_range[1], **f64))
    dist = SimpleShapeDistribution(model, morphological_age_distribution=ages)
    _, pheno = dist.sample(count)
    params = torch.stack([pheno[k] for k in model.phenotype_labels], 1)
    empty = params.new_zeros((count, 0))
    verts, heads = [], []
    with torch.no_grad():
        for chunk in torch.split(torch.arange(count), 100):
            coeffs = model._get_phenotype_blendshape_coefficients(params[chunk], empty[chunk],
                                                                  empty[chunk])
            rest = model.get_rest_model(coeffs)
            verts.append(rest["rest_vertices"].numpy() @ ANNY_TO_SMPL.T)
            heads.append(rest["rest_bone_heads"].numpy() @ ANNY_TO_SMPL.T)
    gender = pheno["gender"].numpy()
    return np.concatenate(verts), np.concatenate(heads), gender


# ----------------------------------------------------------------------------- T-pose
def rotation_between(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The smallest rotation taking direction a to direction b (3 x 3)."""
    a, b = a / np.linalg.norm(a), b / np.linalg.norm(b)
    axis = np.cross(a, b)
    s, c = np.linalg.norm(axis), float(np.dot(a, b))
    if s < 1e-12:
        return np.eye(3)
    return axis_angle(axis / s * np.arctan2(s, c))


def axis_angle(v: np.ndarray) -> np.ndarray:
    angle = np.linalg.norm(v)
    if angle < 1e-12:
        return np.eye(3)
    k = v / angle
    kx = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.eye(3) + np.sin(angle) * kx + (1 - np.cos(angle)) * kx @ kx


def t_pose_rotations(heads: np.ndarray, labels: list[str], parents: list[int]) -> np.ndarray:
    """Local (parent-relative) rotations, 104 x 3 x 3, that put one A-posed sample in T-pose.

    World-aligned rest frames: a bone's world rotation is the product of the local ones
    along its chain, so each target world rotation W_b gives R_b = W_parent^T W_b.
    """
    idx = {lab: i for i, lab in enumerate(labels)}
    world = {}  # bone -> desired world rotation (bones not listed inherit their parent's)

    def head(name):
        return heads[idx[name]]

    for s, sign in (("L", 1.0), ("R", -1.0)):
        out = np.array([sign, 0.0, 0.0])
        # Arm: shoulder girdle takes a quarter of the lift, the humerus the rest.
        upper = head(f"lowerarm01.{s}") - head(f"upperarm01.{s}")
        lift = rotation_between(upper, out)
        rotvec = _rotvec(lift)
        world[f"shoulder01.{s}"] = axis_angle(0.25 * rotvec)
        world[f"upperarm01.{s}"] = lift
        fore = lift @ (head(f"wrist.{s}") - head(f"lowerarm01.{s}"))
        w_fore = rotation_between(fore, out) @ lift
        hand = w_fore @ (np.mean([head(f"finger{k}-1.{s}") for k in range(2, 6)], 0)
                         - head(f"wrist.{s}"))
        w_hand = rotation_between(hand, out) @ w_fore
        # Palm down: twist forearm (its twist bone) and hand about the arm axis.
        palm = w_hand @ _palm_normal(heads, idx, s)
        twist = _twist_to(palm, out, np.array([0.0, -1.0, 0.0]))
        world[f"lowerarm01.{s}"] = w_fore
        world[f"lowerarm02.{s}"] = axis_angle(0.5 * _rotvec(twist)) @ w_fore
        world[f"wrist.{s}"] = twist @ w_hand
        # Leg: hip -> ankle vertical in the frontal plane (2 cm wider at the ankle),
        # foot keeps its rest orientation so the sole stays flat.
        leg = head(f"foot.{s}") - head(f"upperleg01.{s}")
        target = np.array([sign * 0.02, leg[1], 0.0])
        target[2] = leg[2]
        world[f"upperleg01.{s}"] = rotation_between(leg, target)
        world[f"foot.{s}"] = np.eye(3)

    local = np.tile(np.eye(3), (len(labels), 1, 1))
    world_all = np.tile(np.eye(3), (len(labels), 1, 1))
    for b, p in enumerate(parents):
        parent_w = world_all[p] if p >= 0 else np.eye(3)
        w = world.get(labels[b], parent_w)
        world_all[b] = w
        local[b] = parent_w.T @ w
    return local


def _rotvec(r: np.ndarray) -> np.ndarray:
    angle = np.arccos(np.clip((np.trace(r) - 1) / 2, -1, 1))
    if angle < 1e-12:
        return np.zeros(3)
    axis = np.array([r[2, 1] - r[1, 2], r[0, 2] - r[2, 0], r[1, 0] - r[0, 1]])
    return axis / np.linalg.norm(axis) * angle


def _palm_normal(heads, idx, s) -> np.ndarray:
    """Unit normal of the palm (pointing out of the palm) at rest."""
    index, pinky = heads[idx[f"finger2-1.{s}"]], heads[idx[f"finger5-1.{s}"]]
    wrist = heads[idx[f"wrist.{s}"]]
    mid = 0.5 * (index + pinky)
    n = np.cross(mid - wrist, index - pinky)
    if s == "R":
        n = -n
    return n / np.linalg.norm(n)


def _twist_to(v: np.ndarray, axis: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Rotation about ``axis`` taking v's component normal to the axis towards ``target``."""
    a = axis / np.linalg.norm(axis)
    vp, tp = v - a * (v @ a), target - a * (target @ a)
    angle = np.arctan2(np.cross(vp, tp) @ a, vp @ tp)
    return axis_angle(a * angle)


def pose_with_bones(verts, heads, weights, parents, local_rots):
    """Skin one sample with anny's 104 bones (smplx's FK), returning vertices and heads."""
    from smplx.lbs import batch_rigid_transform
    rot = torch.from_numpy(local_rots)[None]
    joints = torch.from_numpy(heads)[None]
    posed_heads, rel = batch_rigid_transform(rot, joints, torch.tensor(parents),
                                             dtype=torch.float64)
    tf = (torch.from_numpy(weights) @ rel[0].reshape(-1, 16)).reshape(-1, 4, 4).numpy()
    posed = np.einsum("vij,vj->vi", tf[:, :3, :3], verts) + tf[:, :3, 3]
    return posed, posed_heads[0].numpy()


# ----------------------------------------------------------------------------- shape space
def shape_space(verts, joints, num_betas: int, joint_weight: float):
    """PCA over [vertices, joints], rotated so that betas[0] is stature.

    Returns mean vertices/joints, vertex/joint directions per unit beta, the stature
    regression (height = h0 + slope * beta0) and the samples' betas.
    """
    n, v = verts.shape[:2]
    x = np.concatenate([verts.reshape(n, -1), joint_weight * joints.reshape(n, -1)], 1)
    mean = x.mean(0)
    _, sv, vt = np.linalg.svd(x - mean, full_matrices=False)
    comps = vt[:num_betas]
    scores = (x - mean) @ comps.T
    std = scores.std(0)
    z = scores / std  # whitened: unit variance, uncorrelated
    heights = verts[..., 1].max(1) - verts[..., 1].min(1)
    grad, *_ = np.linalg.lstsq(np.c_[np.ones(n), z], heights, rcond=None)
    h0, g = grad[0], grad[1:]
    e1 = g / np.linalg.norm(g)
    q, _ = np.linalg.qr(np.c_[e1, np.eye(num_betas)])
    q = q[:, :num_betas] * np.sign(q[:, :1].T @ e1)[0]  # keep e1 as is, any sign for others
    q[:, 0] = e1
    betas = z @ q
    dirs = (comps.T * std) @ q  # D x K: displacement per unit beta
    explained = (sv[:num_betas] ** 2).sum() / (sv**2).sum()
    mean_v, mean_j = mean[: v * 3].reshape(v, 3), mean[v * 3:].reshape(-1, 3) / joint_weight
    dir_v = dirs[: v * 3].reshape(v, 3, num_betas)
    dir_j = dirs[v * 3:].reshape(-1, 3, num_betas) / joint_weight
    return dict(mean_v=mean_v, mean_j=mean_j, dir_v=dir_v, dir_j=dir_j, h0=float(h0),
                slope=float(np.linalg.norm(g)), betas=betas, heights=heights,
                explained=float(explained))


def exact_regressor(mean_v, dir_v, mean_j, dir_j, support: int = 160):
    """24 x V sparse joint regressor R with R(mean + dirs b) = mean_j + dir_j b for all b.

    Per joint: the ``support`` vertices nearest to it; start from inverse-distance weights
    and take the smallest change meeting the 3(K+1)+1 linear constraints (sum = 1).
    """
    v, _, k = dir_v.shape
    reg = np.zeros((24, v))
    for j in range(24):
        d = np.linalg.norm(mean_v - mean_j[j], axis=1)
        sel = np.argsort(d)[:support]
        w0 = 1.0 / (d[sel] + 1e-3)
        w0 /= w0.sum()
        rows = ([mean_v[sel].T] + [dir_v[sel, :, i].T for i in range(k)]
                + [np.ones((1, len(sel)))])
        a = np.concatenate(rows)
        b = np.concatenate([mean_j[j]] + [dir_j[j, :, i] for i in range(k)] + [[1.0]])
        w = w0 + a.T @ np.linalg.solve(a @ a.T, b - a @ w0)
        reg[j, sel] = w
    return reg


# ----------------------------------------------------------------------------- main
def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="refit_ros/body/data/open_body_v1.npz")
    parser.add_argument("--samples", type=int, default=600)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--betas", type=int, default=10)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    import anny
    model = build_anny()
    labels, parents = list(model.bone_labels), [int(p) for p in model.bone_parents]
    faces = model.faces.numpy().astype(np.int64)
    bone_w = model.dense_vertex_bone_weights.numpy()
    bone_to_joint = np.array([smpl_joint_of_bone(lab) for lab in labels])
    merged = np.zeros((bone_w.shape[0], 24))
    np.add.at(merged.T, bone_to_joint, bone_w.T)

    rest_v, rest_h, gender = sample_rest_meshes(model, args.samples, args.seed)
    log.info("sampled %d adult phenotypes", len(rest_v))
    tv, th = np.empty_like(rest_v), np.empty_like(rest_h)
    for i in range(len(rest_v)):
        rots = t_pose_rotations(rest_h[i], labels, parents)
        tv[i], th[i] = pose_with_bones(rest_v[i], rest_h[i], bone_w, parents, rots)
    tj = smpl_joints_from_heads(th, labels)
    shift = tj[:, :1].copy()  # pelvis joint at the origin for every body
    tv, tj, th = tv - shift, tj - shift, th - shift

    space = shape_space(tv, tj, args.betas, joint_weight=np.sqrt(tv.shape[1] / 24))
    reg = exact_regressor(space["mean_v"], space["dir_v"], space["mean_j"], space["dir_j"])
    err = _regressor_error(reg, space)
    mean_heads = th.mean(0)
    eye_ids = [labels.index("eye.L"), labels.index("eye.R")]
    eyeball = np.isin(bone_w.argmax(1), eye_ids)
    markers = place_markers(space["mean_v"], space["mean_j"], merged, faces, mean_heads, labels)
    landmarks = place_landmarks(space["mean_v"], space["mean_j"], merged, mean_heads, labels,
                                eyeball)

    stats = _stats(space, tv, gender, err)
    male, female = gender <= 0.5, gender > 0.5
    h = space["heights"]
    rows, cols = np.nonzero(reg)
    out = dict(
        name=np.array(NAME), version=np.array(1),
        v_template=space["mean_v"].astype(np.float32),
        faces=faces.astype(np.int32),
        shapedirs=space["dir_v"].astype(np.float32),
        weights=merged.astype(np.float32),
        jreg_rows=rows.astype(np.int16), jreg_cols=cols.astype(np.int32),
        jreg_vals=reg[rows, cols].astype(np.float32),
        parents=np.array(SMPL_PARENTS, np.int32),
        joint_names=np.array(SMPL_JOINT_NAMES),
        marker_names=np.array([m[0] for m in markers]),
        marker_ids=np.array([m[1] for m in markers], np.int32),
        landmark_names=np.array([m[0] for m in landmarks]),
        landmark_vertex_ids=np.array([m[1] for m in landmarks], np.int32),
        landmark_joint_ids=np.array([m[2] for m in landmarks], np.int32),
        mean_betas=np.zeros(args.betas, np.float32),
        mean_pose=_mean_pose().astype(np.float32),
        height_mean=np.float32(space["h0"]), height_per_beta0=np.float32(space["slope"]),
        adult_height_male=np.array([h[male].mean(), h[male].std()], np.float32),
        adult_height_female=np.array([h[female].mean(), h[female].std()], np.float32),
        provenance=np.array(json.dumps({
            "generator": "scripts/build_open_body.py", "anny": anny.__version__,
            "anny_licence": "Apache-2.0 (code), CC0-1.0 (MakeHuman/MPFB2 assets)",
            "samples": args.samples, "seed": args.seed, "ages": [20, 60],
            "noncommercial_data_used": False, **stats})),
    )
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out, **out)
    log.info("wrote %s (%.2f MB): %s", args.out, Path(args.out).stat().st_size / 1e6,
             json.dumps(stats))
    return 0


def _mean_pose() -> np.ndarray:
    """24 x 3 axis-angle rest stance: arms down by the sides, elbows slightly bent."""
    pose = np.zeros((24, 3))
    pose[16] = (0.0, 0.0, -1.3)   # left shoulder: arm down (about -z turns +x to -y)
    pose[17] = (0.0, 0.0, 1.3)
    pose[18] = (0.0, -0.25, 0.0)  # elbows: forearm forward a little
    pose[19] = (0.0, 0.25, 0.0)
    return pose


def _regressor_error(reg, space) -> float:
    rng = np.random.default_rng(0)
    b = rng.normal(0, 3, (32, space["dir_v"].shape[-1]))
    v = space["mean_v"][None] + np.einsum("vck,bk->bvc", space["dir_v"], b)
    j = space["mean_j"][None] + np.einsum("jck,bk->bjc", space["dir_j"], b)
    return float(np.abs(np.einsum("jv,bvc->bjc", reg, v) - j).max())


def _stats(space, tv, gender, reg_err) -> dict:
    mv, mj = space["mean_v"], space["mean_j"]
    return {
        "vertices": int(mv.shape[0]), "height_mean_m": round(space["h0"], 4),
        "height_per_beta0_m": round(space["slope"], 4),
        "template_height_m": round(float(mv[:, 1].max() - mv[:, 1].min()), 4),
        "hip_width_m": round(float(np.linalg.norm(mj[1] - mj[2])), 4),
        "pca_explained": round(space["explained"], 6),
        "regressor_max_error_m": reg_err,
        "reconstruction_rmse_m": _pca_rmse(space, tv),
    }


def _pca_rmse(space, tv) -> float:
    rec = space["mean_v"][None] + np.einsum("vck,nk->nvc", space["dir_v"], space["betas"])
    return round(float(np.sqrt(((rec - tv) ** 2).sum(-1).mean())), 5)


if __name__ == "__main__":
    sys.exit(main())
