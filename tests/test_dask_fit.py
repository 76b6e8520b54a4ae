"""backend=dask, fit side (issue 17): xgboost.dask against the local fit, predict parity, a killed worker then
resume, a pruned trial. One LocalCluster of 2 worker processes (1 thread each) serves the module; runs join
it with backend.address, as a run joins a remote cluster."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from tests.runhelpers import ROOT, cli, manifest, report, train_in_process

pytest.importorskip("distributed")
pytest.importorskip("xgboost.dask")

# enough rows that one held-out row moves class accuracy by well under 0.002. Row and column sampling off: the
# local fit draws them itself per round from (seed, round), xgboost.dask with XGBoost's samplers, so with
# sampling the two fits differ as two seeds do (README, backend=dask)
DATA = ["sample_size.rows=40000", "model.params.n_estimators=100", "model.params.subsample=1.0",
        "model.params.colsample_bytree=1.0", "checkpointing=off"]


@pytest.fixture(scope="module")
def cluster():
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0",
                      memory_limit="3GiB") as lc, Client(lc, set_as_default=False) as client:
        yield lc, client


@pytest.fixture(scope="module")
def address(cluster):
    return cluster[0].scheduler_address


@pytest.fixture(scope="module")
def pair(tmp_path_factory, address):
    """The same config trained locally and on the cluster: (local run, dask run)."""
    base = tmp_path_factory.mktemp("dask_pair")
    _, local = train_in_process(base, DATA, name="local")
    _, dask_run = train_in_process(base, [*DATA, "backend=dask", f"backend.address={address}"], name="dask")
    return local, dask_run


def test_dask_matches_local_on_the_same_data(pair):
    local, dask_run = report(pair[0]), report(pair[1])
    assert dask_run["test_set"]["n"] == local["test_set"]["n"]  # every held-out row scored, on the workers
    assert abs(dask_run["metrics"]["class_accuracy"] - local["metrics"]["class_accuracy"]) <= 0.002
    assert abs(dask_run["metrics"]["mae"] - local["metrics"]["mae"]) <= 0.05 * local["metrics"]["mae"]
    # per-lake table from the partitions' sums: the same lakes and rows per lake as the local table
    assert {(r["lake"], r["n"]) for r in dask_run["test"]["per_lake"]} == \
        {(r["lake"], r["n"]) for r in local["test"]["per_lake"]}
    backend = dask_run["backend"]
    assert backend["name"] == "dask" and backend["workers"] == 2 and backend["threads_per_worker"] == 1
    assert backend["address_kind"] == "address" and backend["partitions"]["count"] >= 1
    assert "backend" not in local
    assert set(dask_run) - set(local) == {"backend"}  # report.json keeps its schema


def test_the_training_support_is_reduced_on_the_workers_to_the_local_record(pair):
    """Issue 19's support record on a dask run: the same training rows give the same record whether built from
    the whole frame (local) or from per-partition extents and cell counts (dask); it is hashed and exported,
    and the report counts the test rows outside it as the local evaluate does."""
    local, dask_run = pair
    assert json.loads((dask_run / "features" / "support.json").read_text()) == \
        json.loads((local / "features" / "support.json").read_text())
    man = manifest(dask_run)
    for stage, path in (("features", "features/support.json"), ("export", "model/support.json")):
        assert path in {a["path"] for a in man["stages"][stage]["artifacts"]}
    got, expected = report(dask_run)["test"]["extrapolation"], report(local)["test"]["extrapolation"]
    assert expected is not None and got is not None
    assert {k: got[k] for k in ("rows", "checks", "per_lake")} == {k: expected[k] for k in ("rows", "checks", "per_lake")}
    assert got["share"] == pytest.approx(expected["share"])


def test_test_metrics_are_exact_reductions_over_the_written_predictions(pair):
    from kaayko_exp.evaluation.metrics import metrics

    dask_run = pair[1]
    preds = pd.read_parquet(dask_run / "predictions" / "test.parquet")  # a partitioned dataset
    assert len(list((dask_run / "predictions" / "test.parquet").glob("part-*.parquet"))) >= 1
    expected = metrics(preds["paddle_score"], preds["prediction"])
    got = report(dask_run)["metrics"]
    assert got["n"] == expected["n"] == len(preds)
    for name in ("mae", "rmse", "r2", "class_accuracy", "within_half", "skill_accuracy"):
        assert got[name] == pytest.approx(expected[name], rel=1e-9, abs=1e-12)


def test_the_manifest_records_the_backend(pair):
    man = manifest(pair[1])
    assert man["status"] == "completed"
    assert man["backend"]["workers"] == 2 and man["backend"]["partitions"]["count"] >= 1
    assert man["data"]["partitions"]["count"] == man["backend"]["partitions"]["count"]


def test_compare_reads_dask_runs_like_any_other(pair):
    out = subprocess.run([sys.executable, "-m", "kaayko_exp.compare", str(pair[0]), str(pair[1]), "--format", "json",
                          "--metrics", "mae,class_accuracy"], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout)
    rows = rows["rows"] if isinstance(rows, dict) else rows
    assert len(rows) == 2 and all(r.get("status") == "completed" for r in rows)


def test_predict_on_the_cluster_equals_the_local_path(pair, address, tmp_path):
    from kaayko_exp import Predictor
    from kaayko_exp.data.schema import LABEL_DERIVED
    from kaayko_exp.serving.predictor import predict_file

    rows = pd.read_parquet(pair[1] / "predictions" / "test.parquet").drop(columns=["prediction", *sorted(LABEL_DERIVED)])
    rows = rows.iloc[:3000]
    src = tmp_path / "weather"
    src.mkdir()
    for i in range(3):
        rows.iloc[i * 1000:(i + 1) * 1000].to_parquet(src / f"part{i}.parquet", index=False)
    out = tmp_path / "scores"
    res = cli("predict.py", [f"run={pair[1]}", f"input={src}", f"output={out}", "backend=dask",
                             f"backend.address={address}"])
    assert res.returncode == 0, res.stderr
    got = pd.read_parquet(out)
    local = tmp_path / "local.parquet"
    predict_file(Predictor.load(pair[1]), src, local)
    expected = pd.read_parquet(local)
    assert len(got) == 3000
    pd.testing.assert_frame_equal(got.reset_index(drop=True), expected.reset_index(drop=True))


def test_other_families_are_refused_on_dask_before_any_work(tmp_path):
    res = cli("train.py", ["backend=dask", "model=histgb", f"hydra.run.dir={tmp_path / 'run'}"])
    assert res.returncode == 2
    assert "xgboost is the distributed family" in res.stderr and "Traceback" not in res.stderr
    assert not (tmp_path / "run").exists()


def test_a_pruned_dask_trial_ends_pruned(tmp_path, address, monkeypatch):
    import optuna

    from kaayko_exp.training import pipeline

    study = optuna.create_study(pruner=optuna.pruners.ThresholdPruner(upper=0.0))  # any score is too high
    trial = study.ask()
    monkeypatch.setattr(pipeline, "sweep_trial", lambda: trial)
    with pytest.raises(optuna.TrialPruned):
        train_in_process(tmp_path, ["sample_size.rows=6000", "model.params.n_estimators=40",
                                    "pruning.report_every=10", "backend=dask", f"backend.address={address}"])
    study.tell(trial, state=optuna.trial.TrialState.PRUNED)  # what the sweeper does with TrialPruned
    assert study.trials[0].state == optuna.trial.TrialState.PRUNED
    assert study.trials[0].intermediate_values == {10: pytest.approx(study.trials[0].intermediate_values[10])}
    man = manifest(tmp_path / "run")
    assert man["status"] == "pruned" and man["stages"]["fit"]["status"] == "pruned"
    assert [e["step"] for e in man["events"] if e["event"] == "pruned"] == [10]


def _wait_for(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def _fit_checkpoint(run_dir: Path) -> int:
    try:
        man = json.loads((run_dir / "manifest.json").read_text())
    except (OSError, ValueError):
        return 0
    return max((c["done"] for c in man.get("checkpoints", []) if c["key"] == "fit"), default=0)


def test_a_worker_killed_mid_fit_interrupts_the_run_and_resume_finishes_it(cluster, address, tmp_path):
    lc, client = cluster
    run_dir = tmp_path / "run"
    rel = os.path.relpath(run_dir, ROOT)
    args = ["sample_size.rows=40000", "n_jobs=1", "plots=false", "model.params.n_estimators=100",
            "model.params.max_depth=8", "checkpointing.every=20", f"cache_dir={tmp_path / 'cache'}",
            "backend=dask", f"backend.address={address}", f"hydra.run.dir={rel}"]
    proc = subprocess.Popen([sys.executable, str(ROOT / "train.py"), *args], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env={**os.environ, "HYDRA_FULL_ERROR": "0"})
    try:
        _wait_for(lambda: _fit_checkpoint(run_dir) >= 20 or proc.poll() is not None, 240, "a fit checkpoint")
        assert proc.poll() is None, proc.stdout.read()
        pids = client.run(os.getpid)
        # the worker holding the most data: a small table may sit in one partition, and a worker holding none
        # takes no part in the fit (killing it would interrupt nothing)
        held = client.has_what()
        victim = max(sorted(pids), key=lambda w: len(held.get(w, ())))
        os.kill(pids[victim], signal.SIGKILL)  # a real worker process, killed mid-fit
        out, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 75, out
    assert "left the cluster during the fit" in out and "Traceback" not in out
    man = manifest(run_dir)
    assert man["status"] == "interrupted" and man["stages"]["fit"]["status"] == "interrupted"
    kept = _fit_checkpoint(run_dir)
    assert kept >= 20
    client.wait_for_workers(2, timeout=60)  # the nanny restarts the killed worker
    res = cli("train.py", [f"resume={rel}"], timeout=600)  # as the interrupted run printed it
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    man = manifest(run_dir)
    assert man["status"] == "completed"
    assert [e for e in man["events"] if e["event"] == "restore" and e["done"] == kept]
    assert json.loads((run_dir / "model" / "model.json").read_text())["family"] == "xgboost"


def test_a_resume_on_another_worker_count_says_so_and_records_it(caplog):
    from types import SimpleNamespace

    from kaayko_exp.cluster.stages import ClusterState, _record_backend

    events = []
    run = SimpleNamespace(manifest={"backend": {"name": "dask", "workers": 4}}, save=lambda: None,
                          event=lambda name, **kw: events.append((name, kw)))
    state = ClusterState(session=SimpleNamespace(info={"address_kind": "local", "workers": 2,
                                                       "threads_per_worker": 1, "memory_limit": None}))
    with caplog.at_level("WARNING"):
        _record_backend(run, state)
    assert events == [("backend_changed", {"workers_before": 4, "workers_now": 2})]
    assert run.manifest["backend"]["workers"] == 2 and run.manifest["backend"]["history"][0]["workers"] == 4
    assert "2 Dask worker(s); the run so far used 4" in caplog.text


@pytest.mark.slow
def test_a_sweep_trains_its_trials_on_the_cluster(address, tmp_path):
    sweep = tmp_path / "sweep"
    res = cli("train.py", ["-m", "hydra/sweeper=optuna", "hydra.sweeper.n_trials=2", "hydra.sweeper.n_jobs=1",
                           "model.params.max_depth=choice(3,4)", "backend=dask", f"backend.address={address}",
                           "sample_size=tiny", "n_jobs=1", "plots=false", "model.params.n_estimators=20",
                           f"hydra.sweep.dir={sweep}", f"cache_dir={tmp_path / 'cache'}"], timeout=600)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    trials = pd.read_csv(sweep / "trials.csv")
    assert list(trials["state"]) == ["COMPLETE", "COMPLETE"]
    for run_dir in trials["run_dir"]:
        assert report(sweep / str(run_dir))["backend"]["address_kind"] == "address"


def test_workers_killed_for_memory_stop_with_one_paragraph_naming_the_limit_and_partition_size():
    from types import SimpleNamespace

    from distributed.scheduler import KilledWorker
    from omegaconf import OmegaConf

    from kaayko_exp.cluster.stages import WorkerMemoryError, cluster_stages
    from kaayko_exp.errors import KaaykoError

    cfg = OmegaConf.create({"model": {"name": "xgboost"}, "evaluation": {"cv_folds": 0}})
    session = SimpleNamespace(client=None, info={"address_kind": "local", "workers": 2, "threads_per_worker": 1,
                                                 "memory_limit": 1 << 30})
    run = SimpleNamespace(manifest={}, save=lambda: None, event=lambda *a, **k: None, shown="outputs/x/y")
    ctx = SimpleNamespace(cfg=cfg, session=session, run=run)
    local = {name: (None, None) for name in ("fit", "evaluate", "report", "export")}
    with pytest.raises(WorkerMemoryError) as caught:
        with cluster_stages(ctx, local, hooks=None):
            ctx.cluster.info = {"partitions": {"count": 8, "rows": [250_000] * 8}}
            raise KilledWorker("('transform-part', 3)", SimpleNamespace(address="tcp://127.0.0.1:40000"), 3)
    text = str(caught.value)
    assert isinstance(caught.value, KaaykoError) and "\n" not in text
    assert "backend.memory_limit is 1.00 GiB per worker" in text and "8 partitions of up to 250000 rows" in text
    assert "backend.partition_rows" in text and "resume=outputs/x/y" in text
