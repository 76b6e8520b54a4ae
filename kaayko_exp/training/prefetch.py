"""Import, on a background thread, the libraries a run's later stages will import.

A run's start-up and data stages leave the second core idle much of the time, and part of their work (parquet
reads, hashing and copying large arrays) runs without the GIL; importing XGBoost (~0.8 s, with scikit-learn and
SciPy) and matplotlib (~0.3 s) meanwhile takes them off the fit's and the report's path. A stage that needs a
module still imports it itself: it gets the prefetched module, waits on Python's import lock while the prefetch
is importing it, or imports it again (and reports the error there) when the prefetch failed. The prefetch starts
once the run directory is claimed (package metadata and psutil, which both would import, are loaded by then);
what the run imports meanwhile (pyarrow's parquet reader, the split and feature code) overlaps the prefetched
libraries' imports only in standard-library modules without import cycles, which Python's per-module import
locks serialise.
"""

from __future__ import annotations

import importlib
import logging
import threading
from typing import Any, Iterable

from omegaconf import OmegaConf

log = logging.getLogger(__name__)

#: model family -> the library its fit imports (families not listed import theirs in the config check)
FIT_LIBRARIES = {"xgboost": ("xgboost",)}
#: what the report's figures import (kaayko_exp.evaluation.plots)
PLOT_LIBRARIES = ("matplotlib.figure", "matplotlib.backends.backend_agg")


def modules_for(cfg: Any) -> list[str]:
    """The modules a run of ``cfg`` will import in its fit and report stages, in the order it needs them."""
    names = list(FIT_LIBRARIES.get(str(OmegaConf.select(cfg, "model.name", default="")), ()))
    if bool(OmegaConf.select(cfg, "plots", default=True)):
        names += PLOT_LIBRARIES
    return names


def prefetch(names: Iterable[str]) -> threading.Thread:
    """Start importing ``names`` (in order) on a daemon thread; return the thread."""
    names = list(names)

    def work() -> None:
        for name in names:
            try:
                importlib.import_module(name)
            except Exception as exc:  # the stage that imports it reports the error
                log.debug("prefetching %s failed: %s", name, exc)

    thread = threading.Thread(target=work, name="kaayko-prefetch", daemon=True)
    thread.start()
    return thread
