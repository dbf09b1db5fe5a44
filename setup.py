"""refit_ros: Python package setup (the ROS messages are built by CMake, see CMakeLists.txt)."""

from setuptools import find_packages, setup

setup(
    name="refit_ros",
    version="0.1.0",
    description="Real-time 3D human mesh recovery (ReFit) for ROS 2",
    license="MIT",
    python_requires=">=3.10",
    packages=find_packages(include=["refit_ros", "refit_ros.*"], exclude=["refit_ros.msg"]),
    include_package_data=True,
    package_data={"refit_ros": ["body/data/*", "models/**/weights/*", "detect/data/*",
                                "runtime/data/*"]},
    entry_points={
        "console_scripts": [
            "refit-ros = refit_ros.cli:main",
        ],
    },
)
