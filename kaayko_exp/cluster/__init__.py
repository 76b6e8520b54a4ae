"""``backend=dask``: the run's table on a Dask cluster (issue 17). Nothing here is imported on the
``--help`` / ``--cfg job`` path, and dask / distributed are imported inside the functions.

The API the training and serving code call (stable; the data side of issue 17):

``session.open_cluster(backend_cfg)`` -> context manager yielding a :class:`session.ClusterSession`
    ``.client`` (a ``distributed.Client``) and ``.info`` (dict: ``address_kind`` "local" | "address" |
    "scheduler_file", ``address``, ``workers``, ``threads_per_worker``, ``memory_limit`` (bytes per worker, or
    None), ``dashboard``). A LocalCluster it started is closed on exit; a joined cluster is left running.
    An unreachable scheduler raises :class:`session.SchedulerUnreachable` (a ConfigError: exit 2, one
    paragraph naming the address) within ``backend.connect_timeout`` seconds.
``session.backend_session(cfg)`` -> context manager yielding None for ``backend=local`` (or a config without
    a ``backend`` block: runs made before it) and ``open_cluster(cfg.backend)``'s session for ``backend=dask``.
    ``training.runner`` opens it (start and resume) before the run directory exists and passes it to
    ``pipeline.execute(cfg, run, session=...)``, which keeps it in ``Context.session``.
    ``session.check_backend(backend_cfg)`` refuses unusable ``backend.*`` values (ConfigError) first.
``frames.load_frame(cfg, client)`` -> ``(ddf, info)``, as ``kaayko_exp.data.load_dataset`` returns
    ``(frame, info)``: ``ddf`` is a dask DataFrame of validated rows (the 35 schema columns and dtypes;
    categories unknown to dask), every partition built on the workers from the content-addressed cache
    (``<cache_dir>/datasets/<key>.parts/part-NNNNN.parquet`` + ``<key>.parts.json``); ``info`` has the keys of
    the local info plus ``partitions`` ({"count", "rows": [rows of each partition]}) and
    ``content_sha256`` (sha256 over the parts' sha256s: the dataset's identity, for the manifest).
``split.split_frame(ddf, cfg)`` -> ``{"train": ddf, "val": ddf, "test": ddf, "table": DataFrame, "description":
    dict}``: ``table`` is the small (lake, month) table (columns lake, period = year*12 + month - 1, rows,
    part) whose lake, period and part the workers receive to label their rows (part codes as
    pipeline.SPLIT_CODES: 0 train, 1 val, 2 test); ``description`` is ``features.splits.split_rows``'
    description, with the real row counts. The part frames keep ``ddf``'s partitions (some may be empty:
    a held-out lake's rows sit in a few partitions); their index is each row's position in the table.
``features.fit_spec(train_ddf, cfg)`` -> ``FeatureSpec`` (category levels reduced over the training
    partitions; the same object ``features.spec.build_spec`` makes from the same rows).
``features.transform(ddf, spec)`` -> ``(X, y)``: ``X`` a dask DataFrame (float32, columns = the spec's feature
    names) made per partition by ``features.spec.transform`` (the serving code), ``y`` a float64 dask Series
    of ``paddle_score`` with the same partitions.

Column projection: ``ddf[[...]]`` reads only those columns of the cached parquet parts, so select the
columns a step needs before mapping over partitions.

``cfg`` is always the whole training config (``cfg.data``, ``cfg.sample_size``, ``cfg.seed``,
``cfg.cache_dir``, ``cfg.split``, ``cfg.features``, ``cfg.backend``).
"""
