"""Offline input and output: frame sources, camera_info files, the ``refit-ros video`` runner."""
