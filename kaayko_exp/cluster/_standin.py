"""TEMPORARY stand-in for the data side of issue 17 (removed once wt-dask-data is merged)."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class ClusterSession:
    client: Any
    info: dict[str, Any] = field(default_factory=dict)


@contextlib.contextmanager
def open_cluster(backend_cfg: Any):
    from distributed import Client, LocalCluster

    cluster = None
    if backend_cfg.get("address"):
        client = Client(backend_cfg.address, timeout=10, set_as_default=False)
        kind = "address"
    else:
        cluster = LocalCluster(n_workers=int(backend_cfg.n_workers), threads_per_worker=int(backend_cfg.threads_per_worker),
                               memory_limit=backend_cfg.memory_limit, processes=True, dashboard_address=":0")
        client = Client(cluster, set_as_default=False)
        kind = "local"
    workers = client.scheduler_info(n_workers=-1)["workers"]
    info = {"address_kind": kind, "address": client.scheduler.address, "workers": len(workers),
            "threads_per_worker": sorted({w["nthreads"] for w in workers.values()})[0],
            "memory_limit": sorted({w["memory_limit"] for w in workers.values()})[0], "dashboard": None}
    try:
        yield ClusterSession(client, info)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def load_frame(cfg: Any, client: Any):
    import dask.dataframe as dd

    from kaayko_exp.data import load_dataset

    frame, info = load_dataset(cfg.data, cfg.sample_size, seed=cfg.seed, cache_dir=cfg.cache_dir)
    n = max(2, len(frame) // int(cfg.backend.partition_rows) + 1)
    ddf = dd.from_pandas(frame, npartitions=n, sort=False)
    import hashlib

    import pandas as pd

    h = hashlib.sha256(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes()).hexdigest()
    sizes = [int(len(p)) for p in np.array_split(np.arange(len(frame)), n)]
    return ddf, {**info, "partitions": {"count": ddf.npartitions, "rows": sizes}, "content_sha256": h}


def split_frame(ddf: Any, cfg: Any):
    import dask.dataframe as dd

    from kaayko_exp.features.splits import split_rows

    frame = ddf.compute().reset_index(drop=True)
    parts = split_rows(frame, cfg.split, cfg.seed)
    out = {k: dd.from_pandas(frame.iloc[np.sort(np.asarray(parts[k]))].reset_index(drop=True),
                             npartitions=2, sort=False) for k in ("train", "val", "test")}
    out["table"] = None
    out["description"] = parts.get("description", {})
    return out


def fit_spec(train_ddf: Any, cfg: Any):
    from kaayko_exp.features.spec import build_spec

    return build_spec(cfg.features, train_ddf.compute())


def transform(ddf: Any, spec: Any):
    import pandas as pd

    from kaayko_exp.data.schema import TARGET
    from kaayko_exp.features.spec import feature_names
    from kaayko_exp.features.spec import transform as tr

    names = feature_names(spec)

    def part(p):
        return pd.DataFrame(tr(spec, p), columns=names, index=p.index).astype(np.float32)

    meta = pd.DataFrame({n: pd.Series([], dtype=np.float32) for n in names})
    X = ddf.map_partitions(part, meta=meta)
    y = ddf[TARGET].astype(np.float64)
    return X, y
