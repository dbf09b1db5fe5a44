"""The generated messages have the documented fields and fixed sizes."""

from __future__ import annotations

from conftest import require_ros


def test_smpl_message_fields():
    require_ros()
    from geometry_msgs.msg import Point
    from refit_ros.msg import SMPL, SMPLArray

    m = SMPL()
    assert m.track_id == 0 and isinstance(m.body_model, str) and isinstance(m.gender, str)
    assert len(m.pose) == 72 and len(m.betas) == 10 and len(m.transl) == 3 and len(m.bbox) == 4
    m.joints = [Point(x=1.0, y=2.0, z=3.0)] * 24
    arr = SMPLArray(bodies=[m])
    arr.header.frame_id = "camera_optical_frame"
    assert arr.bodies[0].joints[5].z == 3.0


def test_core_package_merges_with_generated_messages():
    require_ros()
    import refit_ros
    import refit_ros.msg

    # The hand-written modules and the generated msg package are one `refit_ros`.
    assert any(p.endswith("refit_ros") for p in refit_ros.__path__)
    assert hasattr(refit_ros.msg, "SMPLArray")
