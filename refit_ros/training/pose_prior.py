"""A structured prior over plausible human poses, in SMPL's joint conventions.

Uniform per-joint limits make a poor prior (bodies lean and twist in ways people rarely
do; see docs/LEARNED_FITTING_NOTES.md). Poses here come from families of everyday
activity - standing, walking/running, reaching/gesturing, sitting, crouching/kneeling,
bending, arms raised - each a template with its own parameter ranges, coupled between
limbs where people couple them (gait phase drives both legs and the opposite arms),
plus small per-joint noise and joint limits. The body stays mostly upright; the facing
is chosen by the scene sampler (:mod:`refit_ros.training.synthetic`).

Conventions (SMPL, zero pose = T-pose): in a joint's parent frame +y is up, +z the body's
front and +x the body's left. Hence hip flexion (thigh forward) is a negative rotation
about x, knee flexion positive about x, spine/neck forward bend positive about x; the
left arm rests along +x and the right along -x. Rotations are built as matrices; every
angle is in radians.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Pose families and their sampling weights.
FAMILIES: dict[str, float] = {
    "stand": 0.24, "walk": 0.24, "reach": 0.20, "sit": 0.12, "crouch": 0.07,
    "bend": 0.06, "arms_up": 0.07,
}

L_HIP, R_HIP, SPINE1, L_KNEE, R_KNEE, SPINE2, L_ANKLE, R_ANKLE, SPINE3 = 1, 2, 3, 4, 5, 6, 7, 8, 9
L_FOOT, R_FOOT, NECK, L_COLLAR, R_COLLAR, HEAD = 10, 11, 12, 13, 14, 15
L_SHOULDER, R_SHOULDER, L_ELBOW, R_ELBOW, L_WRIST, R_WRIST, L_HAND, R_HAND = range(16, 24)

#: Left/right twin of every SMPL joint (mirroring).
MIRROR_JOINTS = (0, 2, 1, 3, 5, 4, 6, 8, 7, 9, 11, 10, 12, 14, 13, 15, 17, 16, 19, 18, 21, 20,
                 23, 22)


# ----------------------------------------------------------------------------- rotations
def rot_x(a: np.ndarray) -> np.ndarray:
    """``N`` angles -> ``N x 3 x 3`` rotations about x."""
    c, s = np.cos(a), np.sin(a)
    o, z = np.ones_like(a), np.zeros_like(a)
    return np.stack([o, z, z, z, c, -s, z, s, c], -1).reshape(*np.shape(a), 3, 3)


def rot_y(a: np.ndarray) -> np.ndarray:
    """``N`` angles -> ``N x 3 x 3`` rotations about y."""
    c, s = np.cos(a), np.sin(a)
    o, z = np.ones_like(a), np.zeros_like(a)
    return np.stack([c, z, s, z, o, z, -s, z, c], -1).reshape(*np.shape(a), 3, 3)


def rot_z(a: np.ndarray) -> np.ndarray:
    """``N`` angles -> ``N x 3 x 3`` rotations about z."""
    c, s = np.cos(a), np.sin(a)
    o, z = np.ones_like(a), np.zeros_like(a)
    return np.stack([c, -s, z, s, c, z, z, z, o], -1).reshape(*np.shape(a), 3, 3)


def euler_xyz(x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
    """``R_z(z) R_y(y) R_x(x)`` for ``N`` angle triples -> ``N x 3 x 3``."""
    return rot_z(z) @ rot_y(y) @ rot_x(x)


def arm_rotation(forward: np.ndarray, abduct: np.ndarray, twist: np.ndarray,
                 left: bool) -> np.ndarray:
    """Shoulder rotation from where the upper arm points.

    The arm is first lowered from the T-pose to hang down, twisted about its own axis,
    swung forward by ``forward`` (0 = down, pi/2 = pointing forward, pi = up) and then
    raised sideways by ``abduct`` (pi/2 from hanging = pointing sideways). Elbow flexion
    about the local y axis then brings the forearm forward/inward, as in people.

    Parameters
    ----------
    forward, abduct, twist : np.ndarray
        ``N`` angles.
    left : bool
        Left arm (rests along +x) or right arm (along -x).

    Returns
    -------
    np.ndarray
        ``N x 3 x 3``.
    """
    sign = 1.0 if left else -1.0
    down = rot_z(np.full_like(forward, -sign * np.pi / 2))
    rest_twist = rot_x(sign * twist)
    return rot_z(sign * abduct) @ rot_x(-forward) @ down @ rest_twist


def elbow_rotation(flex: np.ndarray, left: bool) -> np.ndarray:
    """Elbow flexion ``N`` (0 = straight) -> ``N x 3 x 3``."""
    return rot_y(-flex if left else flex)


def leg_rotation(flex: np.ndarray, abduct: np.ndarray, twist: np.ndarray, left: bool) -> np.ndarray:
    """Hip rotation: thigh forward by ``flex``, outward by ``abduct``, twisted about itself."""
    sign = 1.0 if left else -1.0
    return rot_z(sign * abduct) @ rot_x(-flex) @ rot_y(sign * twist)


# ----------------------------------------------------------------------------- sampling
@dataclass
class PoseSample:
    """A batch of poses.

    Attributes
    ----------
    rotmat : np.ndarray
        ``N x 24 x 3 x 3`` local joint rotations; joint 0 is the root's tilt relative to
        upright (the scene sampler adds facing and camera).
    family : np.ndarray
        ``N`` family index into ``list(FAMILIES)``.
    """

    rotmat: np.ndarray
    family: np.ndarray


class _Draw:
    """Vectorised random draws over a batch."""

    def __init__(self, rng: np.random.Generator, n: int):
        self.rng, self.n = rng, n

    def u(self, lo, hi) -> np.ndarray:
        return self.rng.uniform(lo, hi, self.n)

    def g(self, mu, sd) -> np.ndarray:
        return self.rng.normal(mu, sd, self.n)

    def coin(self, p) -> np.ndarray:
        return self.rng.random(self.n) < p


def _relaxed_arms(d: _Draw, out: dict) -> None:
    for side in ("l", "r"):
        out[f"{side}_arm"] = (np.abs(d.g(0.15, 0.2)), d.u(0.05, 0.4), d.g(0.0, 0.3))
        out[f"{side}_elbow"] = np.abs(d.g(0.0, 0.6)) + 0.05


def _standing_legs(d: _Draw, out: dict, shift: float = 0.1) -> None:
    for side in ("l", "r"):
        out[f"{side}_leg"] = (d.g(0.0, shift), np.abs(d.g(0.05, 0.08)), d.g(0.0, 0.15))
        out[f"{side}_knee"] = np.abs(d.g(0.0, 0.2))


def _family_params(name: str, d: _Draw) -> dict:
    """Template parameters of one family for the whole batch (arrays of length N)."""
    o: dict = {"spine": (d.g(0.05, 0.08), d.g(0.0, 0.12), d.g(0.0, 0.05)),
               "neck": (d.g(0.05, 0.15), d.g(0.0, 0.35), d.g(0.0, 0.1)),
               "root": (d.g(0.0, 0.05), d.g(0.0, 0.05))}
    if name == "stand":
        _relaxed_arms(d, o)
        _standing_legs(d, o, 0.12)
        # Hands on hips / arms crossed / in pockets: elbows bent with arms near the body.
        bent = d.coin(0.35)
        for side in ("l", "r"):
            fwd, ab, tw = o[f"{side}_arm"]
            o[f"{side}_arm"] = (np.where(bent, d.u(-0.2, 0.6), fwd),
                                np.where(bent, d.u(0.2, 0.8), ab), tw)
            o[f"{side}_elbow"] = np.where(bent, d.u(1.0, 2.2), o[f"{side}_elbow"])
    elif name == "walk":
        phase = d.u(0, 2 * np.pi)
        run = d.coin(0.3)
        amp = np.where(run, d.u(0.5, 0.9), d.u(0.15, 0.5))
        lean = np.where(run, d.u(0.05, 0.3), d.g(0.03, 0.04))
        o["root"] = (lean, d.g(0.0, 0.04))
        for side, ph in (("l", phase), ("r", phase + np.pi)):
            flex = amp * np.sin(ph) + np.where(run, 0.25, 0.05)
            swing = np.clip(np.sin(ph + 1.3), 0.0, None)
            knee = 0.05 + amp * (0.4 + np.where(run, 2.0, 1.1) * swing) + np.abs(d.g(0, 0.08))
            o[f"{side}_leg"] = (flex + lean, np.abs(d.g(0.04, 0.05)), d.g(0.0, 0.12))
            o[f"{side}_knee"] = knee
            o[f"{side}_ankle"] = d.g(0.0, 0.15) - 0.2 * np.sin(ph)
            # Arms swing against the same-side leg.
            arm_amp = amp * d.u(0.5, 1.1)
            o[f"{side}_arm"] = (-arm_amp * np.sin(ph) + 0.1, d.u(0.05, 0.35), d.g(0.0, 0.3))
            o[f"{side}_elbow"] = np.where(run, d.u(1.1, 1.9), d.u(0.1, 0.8))
    elif name == "reach":
        _standing_legs(d, o, 0.15)
        o["spine"] = (d.g(0.1, 0.15), d.g(0.0, 0.3), d.g(0.0, 0.1))
        lunge = d.coin(0.2)
        lead = d.coin(0.5)
        for side in ("l", "r"):
            fl, ab, tw = o[f"{side}_leg"]
            is_lead = lead if side == "l" else ~lead
            o[f"{side}_leg"] = (np.where(lunge & is_lead, d.u(0.4, 1.0), fl), ab, tw)
            o[f"{side}_knee"] = np.where(lunge & is_lead, d.u(0.4, 1.2), o[f"{side}_knee"])
        for side in ("l", "r"):
            active = d.coin(0.7)
            fwd = d.u(-0.5, 2.9)
            ab = d.u(-0.2, 2.0)
            ab = np.where(fwd > 1.6, np.minimum(ab, 0.8), ab)
            rel_f, rel_a, rel_t = np.abs(d.g(0.15, 0.2)), d.u(0.05, 0.4), d.g(0.0, 0.3)
            o[f"{side}_arm"] = (np.where(active, fwd, rel_f), np.where(active, ab, rel_a),
                                np.where(active, d.g(0.0, 0.5), rel_t))
            o[f"{side}_elbow"] = np.where(active, d.u(0.0, 2.3), np.abs(d.g(0.0, 0.5)))
    elif name == "sit":
        o["spine"] = (d.g(0.1, 0.15), d.g(0.0, 0.15), d.g(0.0, 0.08))
        o["root"] = (d.g(-0.1, 0.12), d.g(0.0, 0.05))
        for side in ("l", "r"):
            o[f"{side}_leg"] = (d.u(1.1, 1.9), d.u(0.0, 0.45), d.g(0.0, 0.2))
            o[f"{side}_knee"] = d.u(0.9, 2.0)
            o[f"{side}_ankle"] = d.g(0.0, 0.2)
            o[f"{side}_arm"] = (d.u(-0.1, 1.2), d.u(0.0, 0.5), d.g(0.0, 0.4))
            o[f"{side}_elbow"] = d.u(0.2, 2.0)
    elif name == "crouch":
        kneel = d.coin(0.4)
        lead = d.coin(0.5)
        o["root"] = (d.u(0.1, 0.6), d.g(0.0, 0.06))
        o["spine"] = (d.u(0.0, 0.4), d.g(0.0, 0.15), d.g(0.0, 0.08))
        for side in ("l", "r"):
            is_lead = lead if side == "l" else ~lead
            flex = np.where(kneel & ~is_lead, d.u(-0.2, 0.3), d.u(1.4, 2.3))
            o[f"{side}_leg"] = (flex + o["root"][0], d.u(0.05, 0.5), d.g(0.0, 0.2))
            o[f"{side}_knee"] = np.where(kneel & ~is_lead, d.u(1.3, 1.8), d.u(1.6, 2.5))
            o[f"{side}_ankle"] = d.g(0.2, 0.2)
            o[f"{side}_arm"] = (d.u(0.0, 1.4), d.u(0.0, 0.6), d.g(0.0, 0.4))
            o[f"{side}_elbow"] = d.u(0.1, 1.8)
    elif name == "bend":
        bend = d.u(0.3, 1.3)
        o["root"] = (bend * d.u(0.4, 0.8), d.g(0.0, 0.05))
        rest = bend - o["root"][0]
        o["spine"] = (rest / 3 + 0.05, d.g(0.0, 0.12), d.g(0.0, 0.06))
        for side in ("l", "r"):
            o[f"{side}_leg"] = (o["root"][0] + d.g(0.0, 0.1), np.abs(d.g(0.05, 0.08)),
                                d.g(0.0, 0.15))
            o[f"{side}_knee"] = np.abs(d.g(0.1, 0.25))
            o[f"{side}_arm"] = (d.u(0.0, 1.8), d.u(0.0, 0.5), d.g(0.0, 0.4))
            o[f"{side}_elbow"] = d.u(0.0, 1.5)
    elif name == "arms_up":
        _standing_legs(d, o, 0.1)
        kind = d.rng.integers(0, 4, d.n)   # T, A, overhead, hands behind head/on head
        ab = np.choose(kind, [d.g(1.5, 0.15), d.g(0.8, 0.15), d.g(2.7, 0.2), d.g(2.3, 0.2)])
        fwd = np.choose(kind, [d.g(0.0, 0.2), d.g(0.1, 0.2), d.g(0.1, 0.3), d.g(0.2, 0.2)])
        elb = np.choose(kind, [np.abs(d.g(0, 0.3)), np.abs(d.g(0, 0.3)), np.abs(d.g(0, 0.3)),
                               d.u(1.8, 2.5)])
        for side in ("l", "r"):
            o[f"{side}_arm"] = (fwd + d.g(0.0, 0.1), ab + d.g(0.0, 0.1), d.g(0.0, 0.3))
            o[f"{side}_elbow"] = elb + np.abs(d.g(0.0, 0.1))
    else:  # pragma: no cover - FAMILIES and this function are edited together
        raise KeyError(name)
    return o


def _assemble(o: dict, d: _Draw, noise: float) -> np.ndarray:
    """Template parameters -> ``N x 24 x 3 x 3`` local rotations."""
    n = d.n
    r = np.tile(np.eye(3), (n, 24, 1, 1))
    pitch, roll = o["root"]
    r[:, 0] = rot_z(roll) @ rot_x(pitch)
    fwd, side_bend, twist = o["spine"]
    for j, share in ((SPINE1, 0.35), (SPINE2, 0.35), (SPINE3, 0.3)):
        r[:, j] = euler_xyz(fwd * share, twist * share, side_bend * share)
    nf, nyaw, ntilt = o["neck"]
    r[:, NECK] = euler_xyz(nf * 0.4, nyaw * 0.4, ntilt * 0.5)
    r[:, HEAD] = euler_xyz(nf * 0.6, nyaw * 0.6, ntilt * 0.5)
    for side, left in (("l", True), ("r", False)):
        hip, knee, ankle, foot = (L_HIP, L_KNEE, L_ANKLE, L_FOOT) if left else (R_HIP, R_KNEE, R_ANKLE, R_FOOT)
        collar, shoulder, elbow, wrist, hand = ((L_COLLAR, L_SHOULDER, L_ELBOW, L_WRIST, L_HAND)
                                                if left else
                                                (R_COLLAR, R_SHOULDER, R_ELBOW, R_WRIST, R_HAND))
        sign = 1.0 if left else -1.0
        flex, ab, tw = o[f"{side}_leg"]
        r[:, hip] = leg_rotation(flex, ab, tw, left)
        r[:, knee] = rot_x(np.clip(o[f"{side}_knee"], 0.0, 2.6))
        ank = o.get(f"{side}_ankle", d.g(0.0, 0.1))
        r[:, ankle] = euler_xyz(np.clip(ank, -0.6, 0.8), d.g(0.0, 0.1), d.g(0.0, 0.08))
        r[:, foot] = rot_x(d.g(0.0, 0.1))
        fwd_a, ab_a, tw_a = o[f"{side}_arm"]
        # The collar takes a little of a raised arm, as the shoulder girdle does.
        lift = np.clip(ab_a - 1.2, 0.0, None) * 0.25
        r[:, collar] = euler_xyz(d.g(0.0, 0.05), d.g(0.0, 0.08), sign * (lift + d.g(0.0, 0.05)))
        r[:, shoulder] = arm_rotation(fwd_a, ab_a - lift, tw_a, left)
        r[:, elbow] = elbow_rotation(np.clip(o[f"{side}_elbow"], 0.0, 2.6), left)
        r[:, wrist] = euler_xyz(d.g(0.0, 0.25), d.g(0.0, 0.3), d.g(0.0, 0.3))
        r[:, hand] = euler_xyz(d.g(0.0, 0.1), d.g(0.0, 0.1), d.g(0.0, 0.15))
    if noise > 0:
        aa = d.rng.normal(0.0, noise, (n, 24, 3))
        aa[:, 0] *= 0.3
        r = r @ _rodrigues(aa)
    return r


def _rodrigues(aa: np.ndarray) -> np.ndarray:
    """``... x 3`` axis-angle -> ``... x 3 x 3``."""
    angle = np.linalg.norm(aa, axis=-1, keepdims=True)
    axis = aa / np.maximum(angle, 1e-12)
    x, y, z = np.moveaxis(axis, -1, 0)
    zero = np.zeros_like(x)
    k = np.stack([zero, -z, y, z, zero, -x, -y, x, zero], -1).reshape(*aa.shape[:-1], 3, 3)
    s, c = np.sin(angle)[..., None], np.cos(angle)[..., None]
    return np.eye(3) + s * k + (1 - c) * (k @ k)


def mirror_rotmat(rotmat: np.ndarray) -> np.ndarray:
    """Left/right mirror image of ``N x 24 x 3 x 3`` poses (reflection x -> -x)."""
    m = np.diag([-1.0, 1.0, 1.0])
    return (m @ rotmat @ m)[:, list(MIRROR_JOINTS)]


def sample_poses(rng: np.random.Generator, n: int, noise: float = 0.06,
                 families: dict[str, float] | None = None) -> PoseSample:
    """Draw ``n`` poses from the structured prior.

    Parameters
    ----------
    rng : np.random.Generator
    n : int
    noise : float
        Standard deviation (radians, per axis) of the per-joint noise on top of the
        templates (a third of it on the root).
    families : dict, optional
        Family weights (default :data:`FAMILIES`).

    Returns
    -------
    PoseSample
    """
    fam = FAMILIES if families is None else families
    names = list(fam)
    p = np.array([fam[k] for k in names], dtype=np.float64)
    which = rng.choice(len(names), size=n, p=p / p.sum())
    out = np.empty((n, 24, 3, 3))
    for i, name in enumerate(names):
        idx = np.nonzero(which == i)[0]
        if idx.size == 0:
            continue
        d = _Draw(rng, idx.size)
        out[idx] = _assemble(_family_params(name, d), d, noise)
    flip = rng.random(n) < 0.5
    if flip.any():
        out[flip] = mirror_rotmat(out[flip])
    return PoseSample(rotmat=out, family=which)
