"""The official ReFit network: HRNet backbone, marker feedback loop, checkpoint loading."""

from refit_ros.models.refit.assets import RefitAssets
from refit_ros.models.refit.refit import Refit, RefitConfig
from refit_ros.models.refit.state import RefitFeatures, RefitPrediction, RefitRun, RefitState

__all__ = ["Refit", "RefitAssets", "RefitConfig", "RefitFeatures", "RefitPrediction",
           "RefitRun", "RefitState"]
