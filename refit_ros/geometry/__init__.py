"""Camera and rotation geometry as pure tensor functions (no ROS, no model state)."""
