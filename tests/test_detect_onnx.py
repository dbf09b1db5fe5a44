"""ONNX person detector: a tiny YOLOv8-layout graph built here, run by real ONNX Runtime.

The graph emits fixed candidate boxes (plus 0 x the mean of its input, so the input really
flows through the session); the test checks letterboxing, decoding, class filtering, NMS and
the mapping back to image pixels against boxes known in image coordinates.
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from refit_ros.config import ConfigError, load_config
from refit_ros.detect import build_detector
from refit_ros.detect.onnx_person import OnnxPersonDetector, decode_yolo, letterbox

NET = 320          # network input S
IMG_W, IMG_H = 640, 480
SCALE = 0.5        # min(320/640, 320/480)
PAD_TOP = 40       # (320 - 480 * 0.5) / 2


def to_net(box):
    """Image-pixel corner box -> network (cx, cy, w, h)."""
    x0, y0, x1, y1 = (np.asarray(box, float) * SCALE) + [0, PAD_TOP, 0, PAD_TOP]
    return [(x0 + x1) / 2, (y0 + y1) / 2, x1 - x0, y1 - y0]


PERSON_A = [100, 60, 300, 460]   # image pixels, x_min y_min x_max y_max
PERSON_B = [400, 100, 600, 400]
# (box in image pixels, person score, other-class score)
CANDIDATES = [
    (PERSON_A, 0.90, 0.05),
    ([104, 64, 304, 456], 0.80, 0.05),   # near-duplicate of A: removed by NMS
    (PERSON_B, 0.70, 0.10),
    ([20, 20, 120, 120], 0.10, 0.95),    # a confident non-person: ignored
    ([500, 300, 560, 420], 0.20, 0.00),  # a weak person: below min_score
]


def make_model(path, candidates=CANDIDATES, dynamic: bool = False) -> None:
    """1 x 3 x S x S -> 1 x (4 + 2) x N, YOLOv8 layout, two classes (0 = person)."""
    cols = [to_net(box) + [p, o] for box, p, o in candidates]
    const = np.asarray(cols, np.float32).T[None]  # 1 x 6 x N
    size = "S" if dynamic else NET
    graph = helper.make_graph(
        [
            helper.make_node("ReduceMean", ["images"], ["mean"], keepdims=0),
            helper.make_node("Mul", ["mean", "zero"], ["nil"]),
            helper.make_node("Add", ["boxes", "nil"], ["output0"]),
        ],
        "tiny_yolo",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, size, size])],
        [helper.make_tensor_value_info("output0", TensorProto.FLOAT, list(const.shape))],
        initializer=[
            helper.make_tensor("boxes", TensorProto.FLOAT, const.shape, const.ravel()),
            helper.make_tensor("zero", TensorProto.FLOAT, [], [0.0]),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("onnx") / "tiny_yolo.onnx"
    make_model(path)
    return path


@pytest.fixture(scope="module")
def detector(model_path):
    return OnnxPersonDetector(model_path, max_people=4, min_score=0.5)


def test_detects_known_boxes(detector):
    image = np.zeros((IMG_H, IMG_W, 3), np.uint8)
    dets = detector.detect(image)
    assert [round(d.score, 2) for d in dets] == [0.9, 0.7]
    np.testing.assert_allclose(dets[0].bbox, PERSON_A, atol=1e-3)
    np.testing.assert_allclose(dets[1].bbox, PERSON_B, atol=1e-3)
    for d in dets:
        assert d.keypoints2d is None and d.keypoints3d is None
        assert d.bbox.dtype == np.float32
    assert not detector.has_keypoints


def test_max_people_and_threshold(model_path):
    image = np.zeros((IMG_H, IMG_W, 3), np.uint8)
    assert len(OnnxPersonDetector(model_path, max_people=1).detect(image)) == 1
    low = OnnxPersonDetector(model_path, max_people=10, min_score=0.15).detect(image)
    assert [round(d.score, 2) for d in low] == [0.9, 0.7, 0.2]


def test_boxes_clipped_to_image(tmp_path):
    make_model(tmp_path / "edge.onnx", candidates=[([-50, -20, 200, 600], 0.9, 0.0)])
    det = OnnxPersonDetector(tmp_path / "edge.onnx").detect(np.zeros((IMG_H, IMG_W), np.uint8))
    np.testing.assert_allclose(det[0].bbox, [0, 0, 200, IMG_H], atol=1e-3)


def test_dynamic_input_size_uses_default(tmp_path):
    make_model(tmp_path / "dyn.onnx", dynamic=True)
    det = OnnxPersonDetector(tmp_path / "dyn.onnx", input_size=NET)
    assert det.input_hw == (NET, NET)
    np.testing.assert_allclose(det.detect(np.zeros((IMG_H, IMG_W, 3), np.uint8))[0].bbox,
                               PERSON_A, atol=1e-3)


def test_letterbox():
    image = np.full((IMG_H, IMG_W, 3), 255, np.uint8)
    blob, scale, pad = letterbox(image, (NET, NET))
    assert blob.shape == (1, 3, NET, NET) and blob.dtype == np.float32
    assert scale == pytest.approx(SCALE) and pad == (0.0, float(PAD_TOP))
    assert blob[0, :, 0, 0] == pytest.approx(114 / 255)          # grey border
    assert blob[0, :, NET // 2, NET // 2] == pytest.approx(1.0)  # the image


def test_decode_rejects_wrong_layout():
    with pytest.raises(ValueError, match="4\\+C"):
        decode_yolo(np.zeros((1, 3, 10)), 0, 0.5)
    with pytest.raises(ValueError, match="out of range"):
        decode_yolo(np.zeros((1, 6, 10)), 5, 0.5)


def test_build_detector_onnx(model_path):
    cfg = load_config(overrides={"detector.name": "onnx", "detector.onnx_model": str(model_path)})
    det = build_detector(cfg)
    assert isinstance(det, OnnxPersonDetector)
    assert len(det.detect(np.zeros((IMG_H, IMG_W, 3), np.uint8))) == 2


def test_onnx_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="detector.onnx_model"):
        load_config(overrides={"detector.name": "onnx"})
    cfg = load_config(overrides={"detector.name": "onnx",
                                 "detector.onnx_model": str(tmp_path / "nope.onnx")})
    with pytest.raises(FileNotFoundError, match="detector.onnx_model"):
        build_detector(cfg)
