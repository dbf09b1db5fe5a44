"""Multi-person tracking: association, track life cycle, per-track warm-start state."""

from refit_ros.tracking.one_euro import OneEuroFilter
from refit_ros.tracking.tracker import Track, Tracker, TrackerParams

__all__ = ["OneEuroFilter", "Track", "Tracker", "TrackerParams"]
