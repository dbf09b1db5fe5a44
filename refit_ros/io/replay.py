"""Read a refit_ros MCAP recording back: images, CameraInfo and bodies paired by stamp.

The bodies are rebuilt from the *published* parameters (pose, betas, transl) through the
body model, so an overlay made from a recording also checks that what went over the wire
describes the meshes the node saw.
"""

from __future__ import annotations

import dataclasses
import struct
from collections import OrderedDict
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


def _cdr_stamp(data: bytes) -> float:
    """Header stamp of a CDR-serialised message whose first field is a
    ``std_msgs/Header`` (Image, CameraInfo, SMPLArray), read without decoding the rest:
    4 bytes of encapsulation (byte 1: 0 big-, 1 little-endian), then ``int32 sec``,
    ``uint32 nanosec``."""
    if len(data) < 12:
        raise ValueError(f"CDR message of {len(data)} bytes has no header stamp")
    sec, nanosec = struct.unpack_from("<iI" if data[1] & 1 else ">iI", data, 4)
    return float(sec) + 1e-9 * float(nanosec)


#: Most images (and SMPLArrays, CameraInfos) held while waiting for their partner message.
PENDING_LIMIT = 64


def _topic_counts(fh) -> dict[str, int] | None:
    """Messages per topic from the MCAP summary (None when the file has no statistics)."""
    from mcap.reader import make_reader

    try:
        summary = make_reader(fh).get_summary()
    except Exception:  # noqa: BLE001 - a truncated file has no usable summary
        summary = None
    finally:
        fh.seek(0)
    if summary is None or summary.statistics is None:
        return None
    counts: dict[str, int] = {}
    for cid, n in summary.statistics.channel_message_counts.items():
        ch = summary.channels.get(cid)
        if ch is not None:
            counts[ch.topic] = counts.get(ch.topic, 0) + int(n)
    return counts


def read_recording(path: str | Path, body_model, image_topic: str, smpl_topic: str,
                   camera_info_topic: str) -> tuple[int, Iterator[RecordedFrame]]:
    """Images that have bodies (in recording order); also returns the number of images
    recorded.

    The recording is streamed: messages are read lazily in log-time order, only the three
    topics are read at all (mesh markers and other topics are skipped undecoded), an
    image is decoded only when its SMPLArray (same header stamp) arrives, and at most
    :data:`PENDING_LIMIT` images waiting for one are held (the node skips frames; images
    older than a matched one never get bodies and are dropped). Memory therefore stays
    flat however long the recording is. The image count comes from the MCAP summary
    (a counting pass that decodes nothing when the file has none).

    Parameters
    ----------
    body_model : refit_ros.body.base.BodyModel
        The body named in the messages' ``body_model`` field.
    """
    path = Path(path)
    with open(path, "rb") as fh:
        counts = _topic_counts(fh)
        if counts is None:  # no summary: count (records only, nothing decoded)
            from mcap.reader import make_reader

            n_images = sum(1 for _ in make_reader(fh).iter_messages(topics=[image_topic]))
            has_info = True  # unknown: wait for CameraInfo messages
        else:
            n_images, has_info = counts.get(image_topic, 0), counts.get(camera_info_topic, 0) > 0
    faces = body_model.faces.detach().cpu().numpy().astype(np.int32)
    frames = _stream(path, body_model, faces, image_topic, smpl_topic, camera_info_topic,
                     wait_info=has_info)
    return n_images, frames


def _stream(path: Path, body_model, faces: np.ndarray, image_topic: str, smpl_topic: str,
            info_topic: str, wait_info: bool) -> Iterator[RecordedFrame]:
    from mcap.reader import make_reader
    from mcap_ros2.decoder import DecoderFactory

    from refit_ros.ros.image_conversion import image_msg_to_rgb8

    factory = DecoderFactory()

    def decode(schema, channel, message):
        return factory.decoder_for(channel.message_encoding, schema)(message.data)

    # Raw (schema, channel, message) records keyed by header stamp, in arrival order.
    images: OrderedDict[float, tuple] = OrderedDict()
    infos: OrderedDict[float, tuple] = OrderedDict()
    bodies: OrderedDict[float, tuple] = OrderedDict()
    matched: OrderedDict[float, tuple] = OrderedDict()  # image + body, waiting for CameraInfo
    last_info = -np.inf

    def frame(stamp: float, image, body) -> RecordedFrame:
        rgb = image_msg_to_rgb8(decode(*image))
        h, w = rgb.shape[:2]
        info = infos.pop(stamp, None)
        info = decode(*info) if info is not None else None
        intr = (Intrinsics.from_matrix(np.asarray(info.k), w, h)
                if info is not None and float(info.k[0]) > 0 else Intrinsics.fallback(w, h))
        return RecordedFrame(stamp, rgb, FrameResult(_bodies(decode(*body), body_model),
                                                     faces, intr, {}))

    def ready() -> Iterator[RecordedFrame]:
        while matched:
            stamp = next(iter(matched))
            if wait_info and stamp not in infos and stamp > last_info \
                    and len(matched) <= PENDING_LIMIT:
                return  # its CameraInfo may still come
            image, body = matched.pop(stamp)
            yield frame(stamp, image, body)

    with open(path, "rb") as fh:
        reader = make_reader(fh)
        for record in reader.iter_messages(topics=[image_topic, smpl_topic, info_topic],
                                           log_time_order=True):
            topic = record[1].topic
            stamp = _cdr_stamp(record[2].data)
            if topic == image_topic:
                images[stamp] = record
            elif topic == smpl_topic:
                bodies[stamp] = record
            else:
                infos[stamp] = record
                last_info = max(last_info, stamp)
            if stamp in images and stamp in bodies:
                _drop_before(images, stamp)  # older images never get bodies
                matched[stamp] = (images.pop(stamp), bodies.pop(stamp))
            for pending in (images, bodies, infos):
                while len(pending) > PENDING_LIMIT:
                    pending.popitem(last=False)
            yield from ready()
        wait_info = False
        yield from ready()


def _drop_before(pending: OrderedDict, stamp: float) -> None:
    """Drop the entries that arrived before ``stamp``'s."""
    for key in list(pending):
        if key == stamp:
            return
        del pending[key]


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
