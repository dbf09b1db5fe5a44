"""Evaluation: metrics and the held-out synthetic benchmark (video mode: ``video.py``)."""
