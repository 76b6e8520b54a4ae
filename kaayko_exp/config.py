"""Typed configuration schemas, registered in Hydra's ConfigStore.

``conf/train.yaml`` and ``conf/predict.yaml`` start from these schemas, so a
misspelt key or a wrong type fails while Hydra composes the config, before any
work starts. Range and combination checks that types cannot express live in
:func:`kaayko_exp.training.validate.validate_train_config` (which also
refuses keys added with ``+`` that no schema defines). Keep this module free of heavy imports: it is on
the ``--help`` path.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING


# --- data layer ------------------------------------------------------------------------
@dataclass
class DataConfig:
    source: str = "synthetic"  # synthetic | kaayko_csv | parquet | mixed
    path: Optional[str] = None  # directory / file / glob for kaayko_csv and parquet
    label_noise: float = 0.0  # synthetic: std of rater disagreement added before rounding
    total_rows: int = 2_434_601  # synthetic: size of the complete table
    lakes: int = 100  # synthetic: lakes in the table (the 17 paddlingOut spots + real catalogue lakes)
    coverage: float = 1.0  # synthetic: rows per plausible cell of the reference climates (data/koppen.py), also scales the global rows; 0 = off
    # synthetic, mixed: share of a sample's rows from the global coverage rows (conf/data/*.yaml: 0.5); None:
    # uniform over the whole table (a run's config from before the key)
    global_share: Optional[float] = None
    real_weight: float = 1.0  # mixed: weight of the real rows (copies of each real row; fractions subsample)


@dataclass
class SampleSizeConfig:
    name: str = "small"
    fraction: Optional[float] = None  # share of the source (0, 1]
    rows: Optional[int] = None  # exact row count; wins over fraction


# --- backend: where the table lives and who computes -------------------------------------
@dataclass
class BackendConfig:
    """``backend=local`` (default: in this process, as always) or ``backend=dask`` (a Dask cluster; see
    kaayko_exp/cluster/). With ``dask``, ``address`` / ``scheduler_file`` join a running cluster; with neither,
    a ``distributed.LocalCluster`` of ``n_workers`` processes is started for the run and closed after it."""

    name: str = "local"  # local | dask
    address: Optional[str] = None  # dask: scheduler to join, e.g. tcp://10.0.0.5:8786
    scheduler_file: Optional[str] = None  # dask: the JSON file `dask scheduler --scheduler-file` wrote
    n_workers: int = 2  # dask LocalCluster: worker processes
    threads_per_worker: int = 1  # dask LocalCluster: threads of each worker
    memory_limit: Optional[str] = "auto"  # dask LocalCluster: per worker, e.g. 4GiB; auto: RAM / workers
    connect_timeout: float = 10.0  # dask: seconds to reach the scheduler (and to see its first worker)
    dashboard_address: Optional[str] = ":8787"  # dask LocalCluster: dashboard host:port (:0 any free port)
    partition_rows: int = 250_000  # dask: rows per partition of the table (synthetic, parquet, cache)
    log_level: str = "WARNING"  # dask: level of distributed's own messages in train.log (INFO: every worker event)


# --- features, split, model ------------------------------------------------------------
@dataclass
class FeaturesConfig:
    name: str = "standard"
    columns: List[str] = field(default_factory=list)  # raw numeric columns used as they are
    categorical: List[str] = field(default_factory=list)  # categorical columns (encoded by the FeatureSpec)
    cyclic: bool = False  # add sin/cos of month, hour, day of year
    derived: List[str] = field(default_factory=list)  # names of derived features (see features.py)
    # how the tree learners (xgboost, histgb) split on the category codes: native (category-set splits) or
    # codes (threshold splits on the integer codes). ridge / svm one-hot them either way. native by measurement
    # (bench/bench_encoding.py, "encoding" in bench/results.md): at sample_size=large it gave 7-8 % lower MAE on
    # the real sample lakes for both learners at equal synthetic accuracy, which is worth its longer fit.
    category_splits: str = "native"


@dataclass
class SplitConfig:
    name: str = "lakes"  # lakes | spots | time
    test_fraction: float = 0.2  # lakes: share of lakes held out
    test_months: int = 3  # time: most recent months held out
    val_fraction: float = 0.1  # share of training lakes used for validation (early stopping, pruning)


@dataclass
class ModelConfig:
    name: str = MISSING  # xgboost | histgb | random_forest | extra_trees | svm | ridge | ensemble | rule
    params: Dict[str, Any] = field(default_factory=dict)  # passed to the estimator
    members: List[str] = field(default_factory=list)  # ensemble: model group options to average
    weights: Optional[List[float]] = None  # ensemble: member weights (default equal)
    member_configs: Dict[str, Any] = field(default_factory=dict)  # ensemble: every family's config, composed by Hydra
    exact: Optional[bool] = None  # svm: true forces exact kernel SVR, false the approximation, null picks by exact_max_rows
    exact_max_rows: int = 20_000  # svm: above this, kernel approximation + linear SVR
    exact_hard_limit: int = 100_000  # svm: exact kernel SVR refused above this many rows
    approx_components: int = 500  # svm: size of the kernel map above exact_max_rows
    approx_max_rows: int = 100_000  # svm: the kernel map + linear SVR are fitted on a seeded sample of this many rows


@dataclass
class EvaluationConfig:
    cv_folds: int = 0  # >1 adds GroupKFold-by-lake CV on the training part
    external: Optional[str] = None  # extra test set: dir of Kaayko CSVs, .csv or .parquet
    permutation_max_rows: int = 2_000  # permutation importance on a seeded sample of at most this many test rows
    in_sample_max_rows: Optional[int] = 50_000  # in-sample (training-row) metrics on a seeded sample; null: all
    permutation_repeats: int = 2  # shuffles per feature (conf/train.yaml says why 2)
    # value returned to sweepers: <val|cv>_<metric> (test/external: reported only), or a list of them (one per
    # direction of a multi-objective sweep); see kaayko_exp/training/objectives.py
    objective: Any = "val_rmse"


@dataclass
class CheckpointingConfig:
    name: str = "default"
    every: int = 50  # checkpoint every N boosting rounds / trees (0: stage boundaries only)
    keep_last: int = 2  # newest partial states kept
    heartbeat_seconds: float = 10.0


@dataclass
class PruningConfig:
    """How a trial of an Optuna sweep reports to its pruner (only inside a sweep; see training/pruning.py)."""

    report_every: int = 10  # report the validation score every N boosting rounds / trees (independent of checkpointing)


@dataclass
class SafetyStepConfig:
    """One threshold of a safety rule or warning: ``value <op> threshold``."""

    op: str = ">"  # one of > >= < <=
    value: float = 0.0  # the threshold, in the column's unit
    delta: float = 0.0  # rules: change of the score when this step matches (a multiple of 0.5)
    message: str = ""  # warnings: the text shown (rules build their reason from label, value and unit)


@dataclass
class SafetyConditionConfig:
    """A gate of a rule or warning: it applies only where ``column <op> value`` holds."""

    column: str = MISSING
    op: str = ">="
    value: float = 0.0
    label: Optional[str] = None  # name in reasons (default: the column)
    unit: str = ""


@dataclass
class SafetyCheckConfig:
    """A rule or warning on one column (or ``column - minus``): the FIRST matching step applies."""

    column: str = MISSING
    minus: Optional[str] = None  # compare ``column - minus`` (e.g. gust - wind)
    label: Optional[str] = None  # name of the compared value in reasons, e.g. "gust" (default: the column)
    unit: str = ""  # unit of the value in reasons, e.g. "km/h"
    when: List[SafetyConditionConfig] = field(default_factory=list)  # all must hold for the check to apply
    steps: List[SafetyStepConfig] = field(default_factory=list)


@dataclass
class SafetyConfig:
    """The post-model safety layer (conf/safety/*.yaml; see kaayko_exp/serving/safety.py)."""

    name: str = "kaayko"
    enabled: bool = True
    rules: Dict[str, SafetyCheckConfig] = field(default_factory=dict)  # score adjustments (summed)
    warnings: Dict[str, SafetyCheckConfig] = field(default_factory=dict)  # warning texts


# --- experiment tracker -----------------------------------------------------------------
@dataclass
class LoggerConfig:
    """Where a run is mirrored (conf/logger/*.yaml; kaayko_exp/tracking). ``none`` logs nowhere."""

    name: str = "none"  # none | mlflow
    tracking_uri: str = "sqlite:///outputs/mlflow.db"
    experiment_name: str = "kaayko-exp"
    run_name: Optional[str] = None
    log_every: int = 10
    log_model: bool = True
    tags: Dict[str, str] = field(default_factory=dict)
    timeout_s: float = 60.0
    live_after_s: float = 60.0  # the tracker starts this long after the run (or at its end, if sooner)


@dataclass
class TrainConfig:
    data: DataConfig = field(default_factory=DataConfig)
    sample_size: SampleSizeConfig = field(default_factory=SampleSizeConfig)
    features: FeaturesConfig = field(default_factory=FeaturesConfig)
    split: SplitConfig = field(default_factory=SplitConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    evaluation: EvaluationConfig = field(default_factory=EvaluationConfig)
    checkpointing: CheckpointingConfig = field(default_factory=CheckpointingConfig)
    safety: SafetyConfig = field(default_factory=SafetyConfig)
    pruning: PruningConfig = field(default_factory=PruningConfig)
    backend: BackendConfig = field(default_factory=BackendConfig)
    logger: LoggerConfig = field(default_factory=LoggerConfig)
    seed: int = 42
    n_jobs: int = -1
    cache_dir: str = "outputs/.cache"
    resume: Optional[str] = None  # path of a run directory to finish
    plots: bool = True
    # lightning-hydra-template's name for evaluation.objective (an alias, for hparams_search files written for it)
    optimized_metric: Any = None


# --- predict.py ------------------------------------------------------------------------
@dataclass
class ServeConfig:
    host: str = "127.0.0.1"
    port: Optional[int] = None  # set to start the HTTP server (0 picks a free port)
    max_body_bytes: int = 1_000_000  # larger POST bodies get 413
    max_rows: int = 10_000  # longest list accepted by POST /predict
    threads: int = 4  # waitress worker threads


@dataclass
class PredictConfig:
    run: Optional[str] = None  # run directory to load (required)
    input: Optional[str] = None  # batch: .parquet, .csv or a directory of Kaayko CSVs
    output: Optional[str] = None  # batch: .parquet or .csv (written atomically)
    row: Optional[Any] = None  # single row: a mapping (row={temp_c: 22.5, ...}) or "-" for JSON on stdin
    format: str = "text"  # single row output: text | json
    batch_size: int = 200_000  # rows per streamed batch
    log_level: str = "INFO"  # predict.py logs to stderr at this level
    # null: the run's own safety config; safety=kaayko|kaayko_original|off overrides it
    safety: Optional[SafetyConfig] = None
    serve: ServeConfig = field(default_factory=ServeConfig)
    backend: BackendConfig = field(default_factory=BackendConfig)  # backend=dask scores partition by partition


def register_configs() -> None:
    cs = ConfigStore.instance()
    cs.store(name="train_schema", node=TrainConfig)
    cs.store(name="predict_schema", node=PredictConfig)


register_configs()
