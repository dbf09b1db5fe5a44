"""Read a refit_ros MCAP recording back: images, CameraInfo and bodies paired by stamp.

The bodies are rebuilt from the *published* parameters (pose, betas, transl) through the
body model, so an overlay made from a recording also checks that what went over the wire
describes the meshes the node saw.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Iterator

import numpy as np
import torch

from refit_ros.geometry.intrinsics import Intrinsics
from refit_ros.geometry.rotation import axis_angle_to_rotmat
from refit_ros.pipeline.types import Body, FrameResult


@dataclasses.dataclass
class RecordedFrame:
    """One processed frame of a recording.

    Attributes
    ----------
    stamp : float
        Header stamp in seconds.
    image_rgb : ndarray, H x W x 3 uint8
    result : FrameResult
        Bodies rebuilt from the SMPLArray message (vertices from the body model).
    """

    stamp: float
    image_rgb: np.ndarray
    result: FrameResult


def _stamp(header) -> float:
    return float(header.stamp.sec) + 1e-9 * float(header.stamp.nanosec)


def read_recording(path: str | Path, body_model, image_topic: str, smpl_topic: str,
                   camera_info_topic: str) -> tuple[int, Iterator[RecordedFrame]]:
    """Images that have bodies (in stamp order); also returns the number of images recorded.

    Parameters
    ----------
    body_model : refit_ros.body.base.BodyModel
        The body named in the messages' ``body_model`` field.
    """
    from mcap_ros2.reader import read_ros2_messages

    from refit_ros.ros.image_conversion import image_msg_to_rgb8

    images: dict[float, object] = {}
    infos: dict[float, object] = {}
    bodies: dict[float, object] = {}
    for m in read_ros2_messages(str(path)):
        topic, msg = m.channel.topic, m.ros_msg
        if topic == image_topic:
            images[_stamp(msg.header)] = msg
        elif topic == camera_info_topic:
            infos[_stamp(msg.header)] = msg
        elif topic == smpl_topic:
            bodies[_stamp(msg.header)] = msg
    faces = body_model.faces.detach().cpu().numpy().astype(np.int32)

    def frames() -> Iterator[RecordedFrame]:
        for stamp in sorted(bodies):
            if stamp not in images:
                continue
            rgb = image_msg_to_rgb8(images[stamp])
            h, w = rgb.shape[:2]
            info = infos.get(stamp)
            intr = (Intrinsics.from_matrix(np.asarray(info.k), w, h)
                    if info is not None and float(info.k[0]) > 0 else Intrinsics.fallback(w, h))
            yield RecordedFrame(stamp, rgb, FrameResult(
                _bodies(bodies[stamp], body_model), faces, intr, {}))

    return len(images), frames()


def _bodies(msg, body_model) -> list[Body]:
    out = []
    for b in msg.bodies:
        pose = torch.tensor(np.asarray(b.pose, np.float32)).reshape(24, 3)
        betas = torch.tensor(np.asarray(b.betas, np.float32))[None, : body_model.num_betas]
        transl = np.asarray(b.transl, np.float32)
        with torch.no_grad():
            posed = body_model(axis_angle_to_rotmat(pose)[None], betas)
        out.append(Body(
            track_id=int(b.track_id), body_model=b.body_model, gender=b.gender,
            pose=pose.numpy().reshape(72), betas=np.asarray(b.betas, np.float32), transl=transl,
            joints=np.array([[p.x, p.y, p.z] for p in b.joints], np.float32),
            vertices=posed.vertices[0].numpy() + transl, bbox=np.asarray(b.bbox, np.float32),
            score=float(b.score)))
    return out
