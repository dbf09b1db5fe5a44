"""Read official SMPL ``.pkl`` files without chumpy and without trusting the pickle.

Official SMPL pickles were written by Python 2 and hold numpy arrays, a scipy.sparse
``J_regressor`` and chumpy ``Ch`` objects (which no longer import on Python 3.11). The
unpickler below resolves only the globals needed to rebuild numpy arrays and scipy.sparse
matrices, and stands in for any chumpy class with a stub that keeps the object's state;
chumpy keeps its value array in that state (key ``x``). Every other global (``os.system``,
``builtins.eval``, ...) is refused, so a malicious file cannot run code.
"""

from __future__ import annotations

import io
import logging
import pickle
from pathlib import Path

import numpy as np
import scipy.sparse

log = logging.getLogger(__name__)

_np_core = getattr(np, "_core", None) or np.core  # numpy >= 2 renamed numpy.core

_SPARSE = {
    "csc_matrix": scipy.sparse.csc_matrix,
    "csr_matrix": scipy.sparse.csr_matrix,
    "coo_matrix": scipy.sparse.coo_matrix,
}

#: (module, name) -> object: the only globals an SMPL pickle may load.
_ALLOWED: dict[tuple[str, str], object] = {
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("copy_reg", "_reconstructor"): __import__("copyreg")._reconstructor,
    ("copyreg", "_reconstructor"): __import__("copyreg")._reconstructor,
    ("__builtin__", "object"): object,
    ("builtins", "object"): object,
    # Python 3 pickles of protocol < 3 store bytes as latin1 text re-encoded by this.
    ("_codecs", "encode"): __import__("codecs").encode,
}
for _mod in ("numpy.core.multiarray", "numpy._core.multiarray"):
    _ALLOWED[(_mod, "_reconstruct")] = _np_core.multiarray._reconstruct
    _ALLOWED[(_mod, "scalar")] = _np_core.multiarray.scalar
for _mod in ("numpy.core.numeric", "numpy._core.numeric"):
    _ALLOWED[(_mod, "_frombuffer")] = _np_core.numeric._frombuffer
for _name, _cls in _SPARSE.items():
    for _mod in ("scipy.sparse", f"scipy.sparse.{_name[:3]}", f"scipy.sparse._{_name[:3]}"):
        _ALLOWED[(_mod, _name)] = _cls


class ChumpyStub:
    """Stands in for a chumpy object while unpickling; keeps the pickled state."""

    def __init__(self, *args, **kwargs) -> None:
        self.state: object = None

    def __setstate__(self, state: object) -> None:
        self.state = state

    def to_array(self) -> np.ndarray:
        """The chumpy value as a plain array (chumpy stores it under ``x``)."""
        state = self.state
        if isinstance(state, dict) and "x" in state:
            return np.asarray(_plain(state["x"]))
        keys = sorted(state) if isinstance(state, dict) else type(state).__name__
        raise pickle.UnpicklingError(f"chumpy object without a value array 'x' (state: {keys})")


def _chumpy_class(name: str) -> type:
    return type(name, (ChumpyStub,), {})


class RestrictedUnpickler(pickle.Unpickler):
    """A pickle.Unpickler that only rebuilds numpy / scipy.sparse / chumpy data."""

    def find_class(self, module: str, name: str):  # noqa: D102 - pickle API
        if (module, name) in _ALLOWED:
            return _ALLOWED[(module, name)]
        if module == "chumpy" or module.startswith("chumpy."):
            return _chumpy_class(name)
        raise pickle.UnpicklingError(
            f"refused to load global '{module}.{name}': an SMPL file may only hold numpy "
            "arrays, scipy.sparse matrices and chumpy arrays")


def _plain(value: object) -> object:
    """Turn chumpy stubs and sparse matrices into plain numpy arrays (recursively)."""
    if isinstance(value, ChumpyStub):
        return value.to_array()
    if scipy.sparse.issparse(value):
        return np.asarray(value.toarray())
    if isinstance(value, (list, tuple)):
        return type(value)(_plain(v) for v in value)
    return value


def load_restricted(data: bytes) -> object:
    """Unpickle ``data`` with :class:`RestrictedUnpickler` (latin1 for Python 2 pickles)."""
    return RestrictedUnpickler(io.BytesIO(data), encoding="latin1").load()


def read_smpl_pickle(path: str | Path) -> dict[str, np.ndarray]:
    """Read an SMPL pickle into plain arrays under smplx's key names.

    Parameters
    ----------
    path : str or Path
        An official ``SMPL_*.pkl`` (chumpy inside is fine) or a plain-numpy one.

    Returns
    -------
    dict of str to np.ndarray
        Every array-valued entry (``v_template`` V x 3, ``f`` F x 3, ``shapedirs``
        V x 3 x K, ``posedirs`` V x 3 x 207, ``J_regressor`` 24 x V dense, ``weights``
        V x 24, ``kintree_table`` 2 x 24, ...). Strings and nested dicts are dropped.

    Raises
    ------
    pickle.UnpicklingError
        The file is not a pickle, holds a refused global or is not a dict.
    OSError
        The file cannot be read.
    """
    raw = Path(path).read_bytes()
    try:
        obj = load_restricted(raw)
    except pickle.UnpicklingError:
        raise
    except Exception as exc:  # truncated / garbage files raise many types
        msg = f"not a readable pickle ({type(exc).__name__}: {exc})"
        raise pickle.UnpicklingError(msg) from exc
    if not isinstance(obj, dict):
        raise pickle.UnpicklingError(f"expected a dict of arrays, found {type(obj).__name__}")
    out: dict[str, np.ndarray] = {}
    for key, value in obj.items():
        value = _plain(value)
        if isinstance(value, np.ndarray) and value.dtype != object:
            out[str(key)] = value
        else:
            log.debug("%s: skipping non-array entry %r (%s)", path, key, type(value).__name__)
    return out
