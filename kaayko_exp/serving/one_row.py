"""One-row XGBoost scoring through the library's C entry point, without the per-call Python wrapper.

``Booster.inplace_predict`` spends a large share of a one-row call in Python: it rebuilds
the JSON arguments and the array interface, checks the input type against every frame
library and makes a new ctypes array type for the result. :class:`OneRowScorer` does that
work once: each thread owns a 1 x k float32 buffer whose array interface (a fixed address)
and the prediction arguments are encoded at set-up, so a call copies the row into the
buffer and calls ``XGBoosterPredictFromDense`` - the function ``inplace_predict`` itself
calls for numpy input, with the same arguments - so the numbers are the same.

:func:`one_row_scorer` returns None where the library lacks that entry point or where a
trial call does not give ``inplace_predict``'s answer; the Predictor then keeps using
``inplace_predict``.
"""

from __future__ import annotations

import ctypes
import json
import logging
import threading
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

_ARGS = {"type": 0, "training": False, "iteration_begin": 0, "iteration_end": 0, "missing": float("nan"),
         "strict_shape": False, "cache_id": 0}  # inplace_predict's defaults


class _Slot:
    """One thread's input buffer, its array interface and the output pointers."""

    def __init__(self, k: int):
        self.buf = np.zeros((1, k), dtype=np.float32)
        self.row = self.buf[0]
        self.iface = json.dumps({"data": (self.buf.ctypes.data, False), "shape": [1, k], "strides": None,
                                 "typestr": "<f4", "version": 3}).encode()
        self.preds = ctypes.POINTER(ctypes.c_float)()
        self.shape = ctypes.POINTER(ctypes.c_uint64)()
        self.dims = ctypes.c_uint64()
        self.refs = (ctypes.byref(self.shape), ctypes.byref(self.dims), ctypes.byref(self.preds))


class OneRowScorer:
    """``score(x)``: the model's output (float) for one float32 row ``x`` of length k (or shape 1 x k)."""

    def __init__(self, booster: Any, lib: Any, k: int):
        self._booster = booster  # keeps the handle alive
        self._handle = booster.handle
        self._call = lib.XGBoosterPredictFromDense
        self._last_error = lib.XGBGetLastError
        self._last_error.restype = ctypes.c_char_p
        self._args = json.dumps(_ARGS).encode()
        self._proxy = ctypes.c_void_p()
        self._k = k
        self._local = threading.local()

    def _slot(self) -> _Slot:
        slot = getattr(self._local, "slot", None)
        if slot is None:
            slot = self._local.slot = _Slot(self._k)
        return slot

    def score(self, x: np.ndarray) -> float:
        slot = self._slot()
        slot.row[:] = x.reshape(-1)
        if self._call(self._handle, slot.iface, self._args, self._proxy, *slot.refs) != 0:
            raise RuntimeError(f"XGBoost prediction failed: {self._last_error().decode(errors='replace')}")
        if slot.dims.value != 1 or slot.shape[0] != 1:
            raise RuntimeError("XGBoost returned more than one output for one row")
        return float(slot.preds[0])


def one_row_scorer(booster: Any, k: int) -> OneRowScorer | None:
    """A :class:`OneRowScorer` for ``booster`` (k features), or None where it cannot match inplace_predict."""
    try:
        from xgboost.core import _LIB

        scorer = OneRowScorer(booster, _LIB, k)
        trial = np.linspace(-1.0, 1.0, k, dtype=np.float32).reshape(1, k)
        trial[0, ::3] = np.nan
        for x in (trial, np.zeros((1, k), dtype=np.float32)):
            if scorer.score(x) != float(np.asarray(booster.inplace_predict(x)).reshape(-1)[0]):
                raise RuntimeError("the direct call differs from inplace_predict")
        return scorer
    except Exception as exc:  # any mismatch or missing symbol: the library's own path is used
        log.debug("one-row XGBoost fast path not used: %s", exc)
        return None
