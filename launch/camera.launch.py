"""Start the refit node (optionally the camera source and the recorder) with ``ros2 launch``.

Examples::

    ros2 launch refit_ros camera.launch.py image:=/my_cam/image_raw camera_info:=/my_cam/camera_info
    ros2 launch refit_ros camera.launch.py config:=my_refit.yaml
    ros2 launch refit_ros camera.launch.py source:=true input:=/data/clip.mp4 mcap:=/tmp/run.mcap

Every default comes from the refit YAML (``config`` argument, default: the installed
``config/refit.yaml``); an empty argument means "keep the YAML's value". ``refit-ros bringup``
starts the same executables with the same parameters where ``ros2 launch`` is unavailable;
tests/ros/test_launch_file.py keeps the two in step.
"""

import os

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

#: Launch argument -> ROS parameter of the camera source (same table as refit_ros.ros.bringup).
SOURCE_PARAMETERS = {
    "input": "source.input",
    "rate": "source.rate",
    "loop": "source.loop",
    "camera_info_file": "source.camera_info",
}

ARGUMENTS = [
    ("config", "", "refit YAML (only the keys it sets change; empty = config/refit.yaml)"),
    ("image", "", "image topic to subscribe to (remaps ros.image_topic)"),
    ("camera_info", "", "CameraInfo topic (remaps ros.camera_info_topic)"),
    ("source", "false", "also start the camera source (true/false)"),
    ("input", "", "camera source: video file, image folder or image"),
    ("rate", "", "camera source: frames per second (0 = the file's rate)"),
    ("loop", "", "camera source: start over at the end (true/false)"),
    ("camera_info_file", "", "camera source: camera_calibration YAML published as CameraInfo"),
    ("mcap", "", "also start the recorder writing this .mcap file"),
]


def _parameter(name, text):
    if name == "rate":
        return float(text)
    if name == "loop":
        return text.strip().lower() in ("true", "1", "yes")
    return text


def _nodes(context):
    from refit_ros.config import load_config

    def arg(name):
        return LaunchConfiguration(name).perform(context)

    config = os.path.expanduser(arg("config"))
    cfg = load_config(config or None)
    cli = ["--config", config] if config else []
    image_from = cfg.ros.image_topic + ("/compressed" if cfg.ros.compressed else "")
    image_to = arg("image") + ("/compressed" if cfg.ros.compressed and arg("image") else "")
    remaps = [(src, dst) for src, dst in ((image_from, image_to),
                                          (cfg.ros.camera_info_topic, arg("camera_info"))) if dst]
    nodes = [Node(package="refit_ros", executable="refit_node", name="refit_node",
                  arguments=cli, remappings=remaps, output="screen")]
    if arg("source").strip().lower() in ("true", "1", "yes"):
        params = {key: _parameter(name, arg(name))
                  for name, key in SOURCE_PARAMETERS.items() if arg(name)}
        nodes.append(Node(package="refit_ros", executable="refit_source", name="camera_source",
                          arguments=cli, remappings=remaps, parameters=[params], output="screen"))
    if arg("mcap"):
        nodes.append(Node(package="refit_ros", executable="refit_recorder", name="refit_recorder",
                          arguments=cli + ["--mcap", arg("mcap")], remappings=remaps,
                          output="screen"))
    return nodes


def generate_launch_description():
    return LaunchDescription(
        [DeclareLaunchArgument(name, default_value=default, description=text)
         for name, default, text in ARGUMENTS]
        + [OpaqueFunction(function=_nodes)]
    )
