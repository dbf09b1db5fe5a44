"""Training ReFit-KP here: pose prior, synthetic scenes, detector noise, losses, loop."""
