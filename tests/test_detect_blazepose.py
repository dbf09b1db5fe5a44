"""BlazePose (MediaPipe PoseLandmarker, shipped .task bundle) on real public-domain images.

One IMAGE-mode detector for the whole module (the machine is small and shared).
"""

from __future__ import annotations

import hashlib
import re

import numpy as np
import pytest
from skimage import data

from refit_ros.detect import LANDMARK_INDEX, LANDMARK_NAMES, ImageFormatError
from refit_ros.detect.base import box_iou
from refit_ros.detect.blazepose import DEFAULT_MODEL, BlazePoseDetector, tile_boxes

L_SHO, R_SHO = LANDMARK_INDEX["left_shoulder"], LANDMARK_INDEX["right_shoulder"]
L_HIP, R_HIP = LANDMARK_INDEX["left_hip"], LANDMARK_INDEX["right_hip"]


@pytest.fixture(scope="module")
def detector():
    det = BlazePoseDetector(video=False, max_people=4, min_score=0.5)
    yield det
    det.close()


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    return data.astronaut()  # 512 x 512 RGB, public domain: Eileen Collins, facing the camera


@pytest.fixture(scope="module")
def astronaut_dets(detector, astronaut):
    return detector.detect(astronaut)


def test_landmark_names():
    assert len(LANDMARK_NAMES) == 33 and len(set(LANDMARK_NAMES)) == 33
    assert LANDMARK_NAMES[0] == "nose" and LANDMARK_NAMES[32] == "right_foot_index"
    assert (L_SHO, R_SHO, L_HIP, R_HIP) == (11, 12, 23, 24)


def test_astronaut_box_and_score(astronaut_dets):
    assert len(astronaut_dets) == 1
    det = astronaut_dets[0]
    assert det.score > 0.5
    x0, y0, x1, y1 = det.bbox
    # Her head is at about (225, 125) and her body fills the lower left of the picture down
    # to the bottom edge; the flag and the shuttle model on the right are not her.
    assert 0 <= x0 < 120 and 300 < x1 < 420, det.bbox
    assert 0 <= y0 < 90 and y1 == pytest.approx(512, abs=1), det.bbox
    nose = det.keypoints2d[LANDMARK_INDEX["nose"]]
    assert x0 < nose[0] < x1 and y0 < nose[1] < y1
    assert 180 < nose[0] < 270 and 90 < nose[1] < 170, nose
    assert det.keypoints2d.shape == (33, 3) and det.keypoints2d.dtype == np.float32
    assert np.all((det.keypoints2d[:, 2] >= 0) & (det.keypoints2d[:, 2] <= 1))
    # the face is clearly visible; the feet are far outside the picture
    assert det.keypoints2d[LANDMARK_INDEX["nose"], 2] > 0.8
    assert det.keypoints2d[LANDMARK_INDEX["left_ankle"], 2] < 0.2


def test_astronaut_sides(astronaut_dets):
    kp = astronaut_dets[0].keypoints2d
    # she faces the camera: her left shoulder is on the image's right
    assert kp[L_SHO, 0] > kp[R_SHO, 0] + 100
    assert kp[L_SHO, 2] > 0.8 and kp[R_SHO, 2] > 0.8
    assert abs(kp[L_SHO, 1] - kp[R_SHO, 1]) < 60  # shoulders roughly level


def test_astronaut_world_landmarks(astronaut_dets):
    w = astronaut_dets[0].keypoints3d
    assert w.shape == (33, 3) and w.dtype == np.float32
    # metres, origin between the hips
    assert np.linalg.norm(0.5 * (w[L_HIP] + w[R_HIP])) < 0.05
    assert np.all(np.linalg.norm(w, axis=1) < 1.0)
    shoulder_width = np.linalg.norm(w[L_SHO] - w[R_SHO])
    assert 0.2 < shoulder_width < 0.5, shoulder_width
    # y points down: the nose is above the hips; x right: her left shoulder at +x
    assert w[LANDMARK_INDEX["nose"], 1] < -0.4
    assert w[L_SHO, 0] > w[R_SHO, 0]


def test_blank_images_have_nobody(detector):
    assert detector.detect(np.zeros((480, 640, 3), np.uint8)) == []
    assert detector.detect(np.full((480, 640, 3), 200, np.uint8)) == []


@pytest.mark.parametrize("axis", [1, 0], ids=["side_by_side", "stacked"])
def test_two_people(detector, astronaut, axis):
    # Two copies of her (1024 x 512 or 512 x 1024): the detector splits such an image into
    # two square tiles (tile_aspect); untiled, BlazePose's 224 x 224 person detector scores
    # the second, smaller-looking copy below 0.5 side by side.
    dets = detector.detect(np.concatenate([astronaut, astronaut], axis=axis))
    assert len(dets) == 2
    starts = sorted(float(d.bbox[1 - axis]) for d in dets)
    assert starts[0] < 120 and 512 <= starts[1] < 632, starts
    for d in dets:
        assert d.score > 0.5
        kp = d.keypoints2d
        assert kp[L_SHO, 0] > kp[R_SHO, 0]
    # each box stays on its own copy (boxes hold the landmarks seen in the tile the pose was
    # found in and the confident ones beyond it, not the guessed rest of her body)
    assert box_iou(dets[0].bbox, dets[1].bbox)[0, 0] < 0.05


def test_tile_boxes():
    assert tile_boxes(640, 480, 1.5) == [(0, 0, 640, 480)]
    assert tile_boxes(1768, 994, 0) == [(0, 0, 1768, 994)]
    assert tile_boxes(1768, 994, 1.5) == [(0, 0, 994, 994), (774, 0, 994, 994)]
    assert tile_boxes(500, 1200, 1.5) == [(0, 0, 500, 500), (0, 350, 500, 500), (0, 700, 500, 500)]


def test_grey_and_rgba_input(detector, astronaut, astronaut_dets):
    rgba = np.dstack([astronaut, np.full(astronaut.shape[:2], 255, np.uint8)])
    dets = detector.detect(rgba)
    assert len(dets) == 1
    np.testing.assert_allclose(dets[0].bbox, astronaut_dets[0].bbox, atol=0.5)
    # grey: the cameraman (scikit-image `camera`, CC0), 2-D and H x W x 1
    grey = data.camera()
    for img in (grey, grey[:, :, None]):
        dets = detector.detect(img)
        assert len(dets) >= 1 and dets[0].score > 0.5
        x0, y0, x1, y1 = dets[0].bbox
        assert x0 < 250 < x1 and y0 < 150 < y1  # he stands left of centre


def test_bad_input_is_rejected_clearly(detector, astronaut):
    with pytest.raises(ImageFormatError, match="uint8"):
        detector.detect(astronaut.astype(np.float32) / 255)
    with pytest.raises(ImageFormatError, match="H x W x 4"):
        detector.detect(np.zeros((10, 10, 5), np.uint8))
    with pytest.raises(ImageFormatError, match="empty"):
        detector.detect(np.zeros((0, 10, 3), np.uint8))
    with pytest.raises(ImageFormatError, match="numpy array"):
        detector.detect([[0, 0, 0]])


def test_missing_model_names_file_and_rebuild_script(tmp_path):
    missing = tmp_path / "pose_landmarker_full.task"
    with pytest.raises(FileNotFoundError) as err:
        BlazePoseDetector(model_path=missing)
    msg = str(err.value)
    assert str(missing) in msg and "scripts/build_pose_bundle.py" in msg
    pointer = tmp_path / "lfs.task"
    pointer.write_text("version https://git-lfs.github.com/spec/v1\n")
    with pytest.raises(ValueError, match="build_pose_bundle.py"):
        BlazePoseDetector(model_path=pointer)


def test_bundle_matches_notice():
    """The committed bundle is the one NOTICE.md describes (provenance stays true)."""
    notice = (DEFAULT_MODEL.parent / "NOTICE.md").read_text(encoding="utf-8")
    match = re.search(r"Bundle sha256: `([0-9a-f]{64})`", notice)
    assert match, "NOTICE.md lacks the bundle sha256"
    assert hashlib.sha256(DEFAULT_MODEL.read_bytes()).hexdigest() == match.group(1)
    assert "Apache" in notice and "mediapipe==0.10.21" in notice
    assert (DEFAULT_MODEL.parent / "LICENSE-mediapipe.txt").is_file()
