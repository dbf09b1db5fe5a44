"""Runtime backends for the fitting networks: torch, ONNX Runtime and TensorRT.

Each backend (:class:`~refit_ros.runtime.base.Backend`) loads the four stage graphs
(:mod:`refit_ros.export.graphs`) of one network and runs them by name; :data:`BACKENDS` is
the lookup table from ``runtime.backend`` to class (one file per runtime:
``torch_backend.py``, ``onnxruntime_backend.py``, ``tensorrt_backend.py``). Which one the
config asks for, and the network's pre/post-processing around it, are wired in
:mod:`refit_ros.pipeline`.
"""

from refit_ros.runtime.base import BACKENDS, Backend, BackendError, ModelSource, backend_class

__all__ = ["BACKENDS", "Backend", "BackendError", "ModelSource", "backend_class"]
