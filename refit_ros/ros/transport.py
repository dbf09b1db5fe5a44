"""The DDS transport of the processes refit_ros starts (``ros.transport``).

Raw camera images are 1-6 MB. Fast DDS's default shared-memory segment is 0.5 MB, so such an
image leaves a process as UDP fragments, and with BEST_EFFORT QoS (what camera pipelines use)
one lost fragment loses the whole image: between two processes on one machine almost no raw
1080p image arrives (``refit-ros bench transport``; numbers in ``config/fastdds_shm.xml`` and
the README). The publisher's setting is the one that counts.

``ros.transport: shm`` (default) loads the shipped profile ``config/fastdds_shm.xml`` (a
32 MiB shared-memory segment plus UDP on every interface) through
``FASTDDS_DEFAULT_PROFILES_FILE`` before rclpy creates the process's DDS participant, unless
the user already chose a Fast DDS configuration (``FASTDDS_DEFAULT_PROFILES_FILE`` or
``FASTDDS_BUILTIN_TRANSPORTS`` set) or runs another RMW (``RMW_IMPLEMENTATION``).
``ros.transport: system`` leaves the environment alone.

Nothing here imports rclpy: it must run before rclpy is initialised.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import MutableMapping

PROFILE_ENV = "FASTDDS_DEFAULT_PROFILES_FILE"
BUILTIN_ENV = "FASTDDS_BUILTIN_TRANSPORTS"
PROFILE_NAME = "fastdds_shm.xml"
TRANSPORTS = ("shm", "system")
#: RMW implementations that read Fast DDS's XML profiles ("" = the ROS default, Fast DDS).
FASTDDS_RMWS = ("", "rmw_fastrtps_cpp", "rmw_fastrtps_dynamic_cpp")


def profile_path() -> Path:
    """The shipped profile, beside the default ``refit.yaml`` (checkout or install share)."""
    from refit_ros.config import default_config_path

    return default_config_path().parent / PROFILE_NAME


def configure_transport(mode: str, env: MutableMapping[str, str] | None = None) -> str:
    """Apply ``ros.transport`` to ``env`` (default ``os.environ``) and say what was done.

    Call before ``rclpy.init``: Fast DDS reads its profiles when the process's first
    participant is created.

    Parameters
    ----------
    mode : {"shm", "system"}
    env : mapping, optional
        The environment to change (``os.environ`` by default; a child's env dict works too).

    Returns
    -------
    str
        One line for the log: the profile loaded, or why the environment was left alone.
    """
    env = os.environ if env is None else env
    if mode not in TRANSPORTS:
        raise ValueError(f"ros.transport={mode!r} is not one of {list(TRANSPORTS)}")
    if mode == "system":
        return "ros.transport=system: DDS transport left to the environment"
    rmw = env.get("RMW_IMPLEMENTATION", "")
    if rmw not in FASTDDS_RMWS:
        return (f"RMW_IMPLEMENTATION={rmw}: ros.transport=shm applies to Fast DDS only; "
                "configure that RMW for large images yourself")
    for var in (PROFILE_ENV, BUILTIN_ENV):
        if env.get(var):
            return f"{var} is set ({env[var]}): using it instead of the shipped profile"
    path = profile_path()
    if not path.is_file():
        return f"shipped Fast DDS profile {path} missing: large images may be lost between processes"
    env[PROFILE_ENV] = str(path)
    return f"DDS transport: shared memory for large images ({path})"
