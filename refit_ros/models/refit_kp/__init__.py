"""ReFit-KP: the ReFit feedback-update loop driven by 2D keypoints, on the open body."""

from refit_ros.models.refit_kp.loading import DEFAULT_WEIGHTS, load_refit_kp, save_refit_kp
from refit_ros.models.refit_kp.config import RefitKpConfig
from refit_ros.models.refit_kp.evidence import KeypointEvidence, KpFeatures
from refit_ros.models.refit_kp.model import KpEstimate, RefitKp

__all__ = ["DEFAULT_WEIGHTS", "KeypointEvidence", "KpEstimate", "KpFeatures", "RefitKp",
           "RefitKpConfig", "load_refit_kp", "save_refit_kp"]
