"""Anatomical placement of the open body's 67 markers and 33 BlazePose landmarks.

Used by ``build_open_body.py`` (build time only). Everything works on the mean T-posed
body in SMPL's frame (metres, +y up, +z front, body's left +x).

Markers follow the SSM mocap-marker set whose SMPL vertices ReFit reprojects
(``smpl_ssm.npy``). They are listed in the order of ReFit's SMPL marker ids (ascending
SMPL vertex id); the name of each SMPL id is a best-effort identification from public
MoSh/SOMA marker layouts, so marker k here sits where ReFit's k-th SMPL marker sits, up
to that identification. Each marker is found by casting a ray from an anatomical origin
inside the body (built from the joints) in an anatomical direction and taking the
outermost vertex of the allowed body parts within a thin cylinder around the ray.
"""

from __future__ import annotations

import numpy as np

J = {name: i for i, name in enumerate((
    "pelvis", "left_hip", "right_hip", "spine1", "left_knee", "right_knee", "spine2",
    "left_ankle", "right_ankle", "spine3", "left_foot", "right_foot", "neck",
    "left_collar", "right_collar", "head", "left_shoulder", "right_shoulder",
    "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hand", "right_hand"))}

#: Marker names in ReFit's SMPL marker order (SMPL ids 0, 183, 239, ... 6786).
MARKER_ORDER = (
    "LFHD", "LBHD", "LCHEECK", "C7", "LBCEP", "LBSH", "LFWT", "LFTHI", "LKNE", "LKNI",
    "LTIB", "LNWST", "LFTHIIN", "LBAK", "LTHI", "LBUST", "LELB", "LELBIN", "LFRM2", "LSHO",
    "LOWR", "LIWR", "LFIN", "LTHMB", "T8", "STRN", "CLAV", "LBUM", "LBWT", "LTOE",
    "LRSTBEEF", "LANK", "LMT1", "LMT5", "LHEE", "MBLLY",
    "RFHD", "RBHD", "RCHEECK", "RBCEP", "RBSH", "RFWT", "RFTHI", "RKNE", "RKNI", "RTIB",
    "RNWST", "RFTHIIN", "RBAK", "RTHI", "RELB", "RELBIN", "RFRM2", "RSHO", "RFRM2IN", "ROWR",
    "RFIN", "RTHMB", "RBUSTLO", "RBUM", "RBWT", "RTOE", "RRSTBEEF", "RANK", "RMT1", "RMT5",
    "RHEE",
)


class _Body:
    """The mean body with helpers to express anatomical points."""

    def __init__(self, verts, joints, weights, heads, labels, eyeball=None):
        self.v, self.j, self.heads = verts, joints, heads
        self.part = weights.argmax(1)
        self.labels = list(labels)
        self.sole = verts[:, 1].min()
        eyes = heads[[self.labels.index("eye.L"), self.labels.index("eye.R")]]
        self.eye_y = eyes[:, 1].mean()
        self.head_c = np.array([0.0, self.eye_y, joints[J["head"], 2]])
        self.eyeball = np.zeros(len(verts), bool) if eyeball is None else eyeball

    def joint(self, name, side=1):
        return self.j[J[_sided(name, side)]]

    def bone(self, label, side=1):
        return self.heads[self.labels.index(label.replace("{s}", "L" if side > 0 else "R"))]

    def mask(self, parts, side=1):
        ids = [J[_sided(p, side)] for p in parts]
        return np.isin(self.part, ids) & ~self.eyeball

    def ray(self, parts, origin, direction, side=1, radius=0.012):
        """Outermost allowed vertex within ``radius`` of the ray origin + t * direction."""
        allowed = self.mask(parts, side)
        d = np.asarray(direction, float)
        d = d / np.linalg.norm(d)
        rel = self.v - origin
        t = rel @ d
        perp = np.linalg.norm(rel - t[:, None] * d, axis=1)
        for r in radius * np.array([1.0, 1.5, 2.0, 3.0, 4.0]):
            cand = np.flatnonzero(allowed & (t > 0) & (perp < r))
            if len(cand):
                return int(cand[np.argmax(t[cand])])
        raise RuntimeError(f"no surface along {direction} from {origin} in {parts}")

    def nearest(self, parts, point, side=1):
        allowed = np.flatnonzero(self.mask(parts, side))
        return int(allowed[np.argmin(np.linalg.norm(self.v[allowed] - point, axis=1))])


def _sided(name: str, side: int) -> str:
    if name.startswith("L_"):
        return ("left_" if side > 0 else "right_") + name[2:]
    return name


def _lerp(a, b, t):
    return (1 - t) * a + t * b


def _marker_rule(body: _Body, name: str) -> int:
    """Vertex id of one marker (left/right rules are mirror images)."""
    midline = name in _MIDLINE
    s = -1 if (not midline and name[0] == "R") else 1
    key = name if midline else name[1:]
    b, j = body, (lambda n: body.joint(n, s))
    hc, sole = b.head_c, b.sole
    x = np.array([s, 0.0, 0.0])
    rules = {
        "FHD": (["head"], hc + (0, 0.045, 0), (0.45 * s, 0, 1)),
        "BHD": (["head"], hc + (0, 0.03, 0), (0.45 * s, 0, -1)),
        "CHEECK": (["head"], hc + (0, -0.035, 0), (0.75 * s, 0, 1)),
        "BCEP": (["L_shoulder"], _lerp(j("L_shoulder"), j("L_elbow"), 0.5), (0, 0.3, 1)),
        "BSH": (["L_collar", "L_shoulder", "spine3"], j("L_shoulder") - 0.03 * x, (0, 0.2, -1)),
        "FWT": (["pelvis", "spine1", "L_hip"],
                np.array([0.09 * s, j("pelvis")[1] + 0.05, j("pelvis")[2]]), (0.35 * s, 0, 1)),
        "FTHI": (["L_hip"], _lerp(j("L_hip"), j("L_knee"), 0.3), (0, 0, 1)),
        "KNE": (["L_knee", "L_hip"], j("L_knee"), x),
        "KNI": (["L_knee", "L_hip"], j("L_knee"), -x),
        "TIB": (["L_knee"], _lerp(j("L_knee"), j("L_ankle"), 0.5), (s, 0, 0.3)),
        "NWST": (["spine1", "spine2", "pelvis"], j("spine1") * (0, 1, 1), x),
        "FTHIIN": (["L_hip"], _lerp(j("L_hip"), j("L_knee"), 0.35), (-0.7 * s, 0, 1)),
        "BAK": (["spine3", "spine2", "L_collar"],
                np.array([0.09 * s, j("spine3")[1] + 0.02, j("spine3")[2]]), (0, 0, -1)),
        "THI": (["L_hip"], _lerp(j("L_hip"), j("L_knee"), 0.55), x),
        "BUST": (["spine3", "spine2"],
                 np.array([0.095 * s, j("spine3")[1] + 0.04, j("spine3")[2]]), (0, 0, 1)),
        "BUSTLO": (["spine3", "spine2"],
                   np.array([0.095 * s, j("spine3")[1] - 0.01, j("spine3")[2]]), (0, 0, 1)),
        "ELB": (["L_elbow", "L_shoulder"], j("L_elbow"), (0, 0.5, -1)),
        "ELBIN": (["L_elbow", "L_shoulder"], j("L_elbow"), (0, -1, -0.3)),
        "FRM2": (["L_elbow"], _lerp(j("L_elbow"), j("L_wrist"), 0.5), (0, 1, 0.3)),
        "FRM2IN": (["L_elbow"], _lerp(j("L_elbow"), j("L_wrist"), 0.5), (0, -1, 0.3)),
        "SHO": (["L_collar", "L_shoulder"], j("L_shoulder") - 0.02 * x, (0, 1, 0)),
        "OWR": (["L_wrist", "L_elbow"], j("L_wrist"), (0, 0, -1)),
        "IWR": (["L_wrist", "L_elbow"], j("L_wrist"), (0, 0, 1)),
        "FIN": (["L_hand", "L_wrist"], j("L_hand"), (0, 1, 0)),
        "BUM": (["pelvis", "L_hip"],
                np.array([0.08 * s, j("pelvis")[1] - 0.07, j("pelvis")[2]]), (0, 0, -1)),
        "BWT": (["pelvis", "spine1"],
                np.array([0.05 * s, j("pelvis")[1] + 0.06, j("pelvis")[2]]), (0, 0, -1)),
        "TOE": (["L_foot"], np.array([j("L_foot")[0], sole + 0.015, j("L_foot")[2] + 0.02]),
                (0, 0.4, 1)),
        "RSTBEEF": (["L_ankle", "L_foot"],
                    np.array([_lerp(j("L_ankle"), j("L_foot"), 0.5)[0],
                              0.5 * (j("L_ankle")[1] + sole),
                              _lerp(j("L_ankle"), j("L_foot"), 0.5)[2]]), (0, 1, 0.3)),
        "ANK": (["L_ankle", "L_knee"], j("L_ankle"), x),
        "MT1": (["L_foot", "L_ankle"], np.array([j("L_foot")[0], sole + 0.02, j("L_foot")[2]]),
                -x),
        "MT5": (["L_foot", "L_ankle"], np.array([j("L_foot")[0], sole + 0.02, j("L_foot")[2]]),
                x),
        "HEE": (["L_ankle"], np.array([j("L_ankle")[0], sole + 0.03, j("L_ankle")[2]]),
                (0, 0, -1)),
        # midline
        "C7": (["neck", "spine3"], j("neck"), (0, 0, -1)),
        "T8": (["spine3", "spine2"], j("spine3") * (0, 1, 1) + (0, 0.02, 0), (0, 0, -1)),
        "STRN": (["spine3", "spine2"], j("spine3") * (0, 1, 1) - (0, 0.01, 0), (0, 0, 1)),
        "CLAV": (["spine3", "neck", "left_collar", "right_collar"],
                 j("neck") * (0, 1, 1) - (0, 0.03, 0), (0, 0, 1)),
        "MBLLY": (["spine1", "pelvis", "spine2"], j("spine1") * (0, 1, 1) - (0, 0.02, 0),
                  (0, 0, 1)),
    }
    if key == "THMB":
        return body.nearest(["L_hand", "L_wrist"], body.bone("finger1-3.{s}", s), s)
    parts, origin, direction = rules[key]
    return body.ray(parts, np.asarray(origin, float), direction, s)


_MIDLINE = ("C7", "T8", "STRN", "CLAV", "MBLLY")


def place_markers(verts, joints, weights, faces, heads, labels):
    """[(name, vertex id)] for the 67 markers, in ReFit's SMPL marker order."""
    body = _Body(verts, joints, weights, heads, labels)
    out = [(name, _marker_rule(body, name)) for name in MARKER_ORDER]
    ids = [v for _, v in out]
    if len(set(ids)) != len(ids):
        raise RuntimeError("two markers landed on the same vertex")
    return out


def place_landmarks(verts, joints, weights, heads, labels, eyeball):
    """[(name, vertex id or -1, joint id or -1)] for BlazePose's 33 landmarks."""
    body = _Body(verts, joints, weights, heads, labels, eyeball)
    face = ["head"]
    nose = body.ray(face, body.head_c - (0, 0.03, 0), (0, 0, 1))
    vid: dict[str, int] = {"nose": nose}
    for side, pre in ((1, "left_"), (-1, "right_")):
        ball = np.flatnonzero(eyeball & (np.sign(verts[:, 0]) == side))
        centre = ball[np.argmax(verts[ball, 2])]
        front = verts[centre]
        vid[pre + "eye"] = int(centre)
        vid[pre + "eye_inner"] = body.nearest(face, front + (-0.016 * side, 0, -0.006))
        vid[pre + "eye_outer"] = body.nearest(face, front + (0.018 * side, 0, -0.012))
        vid[pre + "ear"] = body.ray(face, body.head_c + (0, -0.02, -0.01), (side, 0, 0))
        vid["mouth_" + pre[:-1]] = body.nearest(face, verts[nose] + (0.024 * side, -0.027, -0.02))
        hand = ["L_hand", "L_wrist"]
        for point, bone in (("pinky", "finger5-1"), ("index", "finger2-1"), ("thumb", "finger1-3")):
            vid[pre + point] = body.nearest(hand, body.bone(bone + ".{s}", side), side)
        ankle = body.joint("L_ankle", side)
        vid[pre + "heel"] = body.ray(["L_ankle"], np.array([ankle[0], body.sole + 0.012, ankle[2]]),
                                     (0, 0, -1), side)
        foot = np.flatnonzero(body.mask(["L_foot"], side))
        vid[pre + "foot_index"] = int(foot[np.argmax(verts[foot, 2])])
    joint_of = {f"{p}{n}": J[f"{p}{m}"] for p in ("left_", "right_") for n, m in (
        ("shoulder", "shoulder"), ("elbow", "elbow"), ("wrist", "wrist"), ("hip", "hip"),
        ("knee", "knee"), ("ankle", "ankle"))}
    from refit_ros.body.base import BLAZEPOSE_LANDMARK_NAMES
    return [(n, vid.get(n, -1), joint_of.get(n, -1)) for n in BLAZEPOSE_LANDMARK_NAMES]
