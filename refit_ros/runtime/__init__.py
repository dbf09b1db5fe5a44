"""Runtimes for the fitting networks: ONNX export, and torch / ONNX Runtime / TensorRT backends.

* :mod:`~refit_ros.runtime.export` -- ``refit-ros export``: four stage graphs + export.yaml,
* :mod:`~refit_ros.runtime.backends` -- :func:`build_backend` (``runtime.backend``) and the
  FittingModel interface over any runtime,
* :mod:`~refit_ros.runtime.tensorrt_backend` -- engines, INT8 calibration, engine cache,
* :mod:`~refit_ros.runtime.bench` -- ``refit-ros bench``.
"""
