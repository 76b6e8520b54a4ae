"""Within one sweep process, the dataset, split and features stages' products for the same inputs are built
once and handed to every later trial with those inputs.

A sweep's trials usually differ only in model parameters, so each trial would re-read the cached table, hash
it, split it and rebuild the same model matrix (~60 ms a trial at ``sample_size=medium``, as much as the rest of
the trial's bookkeeping). A later trial still writes and records its own ``split/assignment.npy`` and
``features/feature_spec.json`` and the same manifest ``data`` block, so each run directory stays complete and
resumable on its own; its stages' detail says ``"prepared": "reused"``.

Kept only for the generated (synthetic) source, whose table is a function of its config and the code already
loaded, never of files that could change during the sweep; only inside a multirun; one entry (the latest
inputs); only when the matrix is at most :data:`MAX_KEPT_BYTES`. The kept arrays are read-only, so a stage that
tried to change them in place would fail loudly rather than alter the next trial's data.
"""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np
from omegaconf import DictConfig, OmegaConf

#: Largest model matrix (bytes) kept between trials (``sample_size=large`` is ~70 MB).
MAX_KEPT_BYTES = 256 << 20

_lock = threading.Lock()
_kept: dict[str, "Prepared"] = {}


@dataclass(frozen=True)
class Prepared:
    """What the dataset, split and features stages leave in memory and in the manifest, for one set of inputs."""

    data: dict[str, Any]            # the manifest's "data" block
    dataset_detail: dict[str, Any]
    split_codes: np.ndarray         # split/assignment.npy's array
    split_detail: dict[str, Any]
    spec: Any
    support: Any                    # the training rows' support (data.support.Support)
    features_detail: dict[str, Any]
    X: np.ndarray
    y: np.ndarray
    lakes: Any
    test_frame: Any
    parts: dict[str, np.ndarray]
    #: the features stage's files (run-relative path -> bytes): a later trial writes these bytes, not a second
    #: encoding of the same spec and support
    files: dict[str, bytes] = field(default_factory=dict)


def key_of(cfg: DictConfig) -> Optional[str]:
    """The inputs of the three stages as a key, or None when their products must not be kept (not a sweep job,
    or a source read from files)."""
    if str(OmegaConf.select(cfg, "data.source", default="")) != "synthetic" or not _in_multirun():
        return None
    inputs = {k: OmegaConf.to_container(cfg[k], resolve=True) if OmegaConf.is_config(cfg[k]) else cfg[k]
              for k in ("data", "sample_size", "split", "features", "seed", "cache_dir")}
    return hashlib.sha256(json.dumps(inputs, sort_keys=True, default=str).encode()).hexdigest()


def _in_multirun() -> bool:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def get(key: Optional[str]) -> Optional[Prepared]:
    if key is None:
        return None
    with _lock:
        return _kept.get(key)


def keep(key: Optional[str], prepared: Prepared) -> None:
    """Keep ``prepared`` for ``key`` (replacing any other entry) when it is small enough."""
    if key is None or prepared.X.nbytes > MAX_KEPT_BYTES:
        return
    for a in (prepared.split_codes, prepared.X, prepared.y, *prepared.parts.values()):
        a.flags.writeable = False
    with _lock:
        _kept.clear()
        _kept[key] = prepared


def clear() -> None:
    with _lock:
        _kept.clear()
