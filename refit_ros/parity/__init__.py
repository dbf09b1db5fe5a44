"""Numerical parity with the official ReFit.

* :mod:`~refit_ros.parity.fixture` -- the reference fixture (arrays + weight rule),
* :mod:`~refit_ros.parity.official` -- ``refit-ros parity``: the torch model vs the fixture,
* :mod:`~refit_ros.parity.backends` -- an exported backend (ONNX Runtime, TensorRT) vs the
  fixture and vs torch.
"""
