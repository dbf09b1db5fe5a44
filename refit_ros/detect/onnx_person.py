"""An ONNX person detector (e.g. a user's YOLOv8-style export) through ONNX Runtime.

Expected model contract (what ``yolo export format=onnx`` produces for YOLOv8/YOLO11 detection
models):

* one input ``1 x 3 x S x S`` float32, RGB scaled to [0, 1], letterboxed (aspect ratio kept,
  padded with grey 114) to ``S x S``; a dynamic ``S`` falls back to ``input_size``;
* one output ``1 x (4 + C) x N``: for each of ``N`` candidates the box centre, width and
  height (``cx, cy, w, h``) in input pixels, then ``C`` class scores in [0, 1] (already
  sigmoid-ed; no separate objectness).

Boxes of class ``person_class`` are kept, non-maximum-suppressed with
``cv2.dnn.NMSBoxes`` and mapped back to the original image. No keypoints.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from refit_ros.detect.base import Detection, Detector, as_rgb_uint8

log = logging.getLogger(__name__)

_PAD_VALUE = 114  # YOLO's letterbox grey


class OnnxPersonDetector(Detector):
    """Person boxes from an ONNX detection model (YOLOv8 output layout).

    Parameters
    ----------
    model_path : str or Path
        The ``.onnx`` file (config ``detector.onnx_model``).
    max_people : int
        Most boxes returned (highest scores first).
    min_score : float
        Class-score threshold for the person class.
    person_class : int
        Index of "person" among the ``C`` classes (0 for COCO-trained models).
    nms_iou : float
        IoU above which the lower-scoring of two boxes is suppressed.
    input_size : int
        ``S`` used when the model's input size is dynamic.
    providers : sequence of str, optional
        ONNX Runtime execution providers; default CPU.
    """

    has_keypoints = False

    def __init__(
        self,
        model_path: str | Path,
        max_people: int = 4,
        min_score: float = 0.5,
        person_class: int = 0,
        nms_iou: float = 0.45,
        input_size: int = 640,
        providers: Sequence[str] | None = None,
    ) -> None:
        import onnxruntime as ort

        self.model_path = Path(model_path)
        if not str(model_path) or not self.model_path.is_file():
            raise FileNotFoundError(
                f"ONNX person detector not found: {str(model_path) or '(empty)'}; set "
                "detector.onnx_model to your exported model (e.g. `yolo export model=yolov8n.pt "
                "format=onnx`), or use detector.name=blazepose"
            )
        self.max_people = int(max_people)
        self.min_score = float(min_score)
        self.person_class = int(person_class)
        self.nms_iou = float(nms_iou)
        self.session = ort.InferenceSession(
            str(self.model_path), providers=list(providers or ["CPUExecutionProvider"])
        )
        inputs = self.session.get_inputs()
        if len(inputs) != 1 or len(inputs[0].shape) != 4:
            raise ValueError(
                f"{self.model_path}: expected one 1 x 3 x S x S input, got "
                + ", ".join(f"{i.name}{i.shape}" for i in inputs)
            )
        self.input_name = inputs[0].name
        h, w = inputs[0].shape[2:]
        self.input_hw = (
            h if isinstance(h, int) else int(input_size),
            w if isinstance(w, int) else int(input_size),
        )
        out = self.session.get_outputs()[0]
        if len(out.shape) != 3:
            raise ValueError(f"{self.model_path}: expected a 1 x (4+C) x N output, got {out.shape}")
        log.info("ONNX person detector %s, input %dx%d", self.model_path, *self.input_hw[::-1])

    def detect(self, image_rgb: np.ndarray, timestamp_s: float | None = None) -> list[Detection]:
        """Person boxes (``keypoints2d`` = ``keypoints3d`` = ``None``); ``timestamp_s`` unused.

        ``score`` is the model's person-class score of the box.
        """
        rgb = as_rgb_uint8(image_rgb)
        blob, scale, pad = letterbox(rgb, self.input_hw)
        (raw,) = self.session.run(None, {self.input_name: blob})[:1]
        boxes, scores = decode_yolo(raw, self.person_class, self.min_score)
        if len(scores) == 0:
            return []
        # back to the original image: undo padding and scale, clip
        boxes = (boxes - np.array([pad[0], pad[1], pad[0], pad[1]])) / scale
        height, width = rgb.shape[:2]
        boxes = np.clip(boxes, 0, [width, height, width, height])
        keep = nms(boxes, scores, self.min_score, self.nms_iou)
        dets = [
            Detection(bbox=boxes[i].astype(np.float32), score=float(scores[i]))
            for i in keep
            if boxes[i, 2] - boxes[i, 0] >= 1 and boxes[i, 3] - boxes[i, 1] >= 1
        ]
        dets.sort(key=lambda d: d.score, reverse=True)
        return dets[: self.max_people]


def letterbox(image_rgb: np.ndarray, size_hw: tuple[int, int]) -> tuple[np.ndarray, float, tuple[float, float]]:
    """Resize keeping the aspect ratio, pad to ``size_hw`` (centred), NCHW float in [0, 1].

    Parameters
    ----------
    image_rgb : ndarray, (H, W, 3) uint8
    size_hw : (int, int)
        Network input height and width.

    Returns
    -------
    blob : ndarray, (1, 3, S_h, S_w) float32
    scale : float
        Network pixels per image pixel.
    pad : (float, float)
        Left and top padding in network pixels: ``net = image * scale + pad``.
    """
    h, w = image_rgb.shape[:2]
    out_h, out_w = size_hw
    scale = min(out_h / h, out_w / w)
    new_w, new_h = max(1, int(round(w * scale))), max(1, int(round(h * scale)))
    resized = cv2.resize(image_rgb, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    left, top = (out_w - new_w) // 2, (out_h - new_h) // 2
    canvas = np.full((out_h, out_w, 3), _PAD_VALUE, dtype=np.uint8)
    canvas[top:top + new_h, left:left + new_w] = resized
    blob = canvas.transpose(2, 0, 1)[None].astype(np.float32) / 255.0
    # the effective scale of each axis differs slightly after rounding; use the x/y means
    eff = 0.5 * (new_w / w + new_h / h)
    return np.ascontiguousarray(blob), eff, (float(left), float(top))


def decode_yolo(raw: np.ndarray, class_id: int, min_score: float) -> tuple[np.ndarray, np.ndarray]:
    """Decode a ``1 x (4+C) x N`` YOLOv8 output into corner boxes of one class.

    Parameters
    ----------
    raw : ndarray, (1, 4 + C, N)
    class_id : int
    min_score : float

    Returns
    -------
    boxes : ndarray, (M, 4) float64
        ``x_min, y_min, x_max, y_max`` in network input pixels.
    scores : ndarray, (M,) float64
    """
    raw = np.asarray(raw)
    if raw.ndim != 3 or raw.shape[0] != 1 or raw.shape[1] < 5:
        raise ValueError(f"expected a 1 x (4+C) x N detector output, got shape {raw.shape}")
    num_classes = raw.shape[1] - 4
    if not 0 <= class_id < num_classes:
        raise ValueError(f"person class {class_id} out of range for a model with {num_classes} classes")
    pred = raw[0].astype(np.float64)
    scores = pred[4 + class_id]
    sel = scores >= min_score
    cx, cy, bw, bh = pred[:4, sel]
    boxes = np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], axis=1)
    return boxes, scores[sel]


def nms(boxes: np.ndarray, scores: np.ndarray, min_score: float, iou: float) -> list[int]:
    """Indices kept by ``cv2.dnn.NMSBoxes`` for corner boxes (``N x 4``), best first."""
    xywh = [[float(b[0]), float(b[1]), float(b[2] - b[0]), float(b[3] - b[1])] for b in boxes]
    keep = cv2.dnn.NMSBoxes(xywh, [float(s) for s in scores], float(min_score), float(iou))
    return [int(i) for i in np.asarray(keep).reshape(-1)]
