"""What turns a fitting network into runnable stage graphs, for every runtime.

* :mod:`~refit_ros.export.families` -- per network: encoder inputs, features, host-side
  preprocessing, the graph-friendly copy,
* :mod:`~refit_ros.export.graphs` / :mod:`~refit_ros.export.graph_body` -- the four stage
  graphs (encoder / init / step / body) and the traceable body models inside them,
* :mod:`~refit_ros.export.onnx` -- ``refit-ros export``: the ONNX files + ``export.yaml``,
* :mod:`~refit_ros.export.cache` -- the per-user export cache (``runtime.export_dir`` empty),
* :mod:`~refit_ros.export.calibration` -- INT8 calibration sets from real crops.
"""
