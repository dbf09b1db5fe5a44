"""The ROS 2 layer of refit_ros: message conversions and node wiring (the only rclpy user).

Modules
-------
image_conversion  sensor_msgs Image / CompressedImage <-> NumPy (no cv_bridge)
messages          FrameResult -> SMPLArray, CameraInfo -> Intrinsics
markers           per-body TRIANGLE_LIST mesh markers with stale-marker removal
camera_info       ROS camera_calibration YAML -> CameraInfo
diagnostics       diagnostic_msgs helpers
parameters        ROS parameters declared from (and validated by) refit_ros.config
latest            a latest-only hand-off slot between threads (never queues stale frames)
node              RefitNode: image -> bodies + markers
source            CameraSource: video / image folder / image -> Image + CameraInfo
recorder          Recorder: topics -> ROS 2 MCAP
mcap_io           MCAP writing shared by the recorder and offline runs (OfflineRecording)
msgdefs           .msg definitions as MCAP ros2msg schemas
bringup           several nodes in one process from one YAML (what the launch file starts)
spin              rclpy init / executor / clean shutdown shared by every entry point
"""
