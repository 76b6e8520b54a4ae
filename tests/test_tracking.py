"""logger=mlflow (issue 18 items 1, 2, 3 and 6): runs and sweeps mirrored in MLflow, read back with MlflowClient.

Real things only: the train.py command line in a temporary project root (the cwd, so the default
``sqlite:///outputs/mlflow.db`` is relative to it as users type it), a real ``mlflow server`` started here,
real signals, a real Optuna sweep with a real pruner.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from datetime import datetime
from pathlib import Path

import pytest
from runhelpers import FAST, ROOT, cli, manifest, report, stop_group

pytest.importorskip("mlflow")

XGB = ["model=xgboost", "model.params.n_estimators=60", "model.params.early_stopping_rounds=null",
       "logger.timeout_s=600"]  # a loaded test machine may take longer than a minute for the uploads
RUN = "outputs/2026-01-02/03-04-05"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def client(uri: str):
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=uri)


def sqlite_uri(project: Path) -> str:
    return f"sqlite:///{project / 'outputs' / 'mlflow.db'}"


def train(project: Path, *args: str, kill_at: str | None = None) -> subprocess.CompletedProcess:
    """``python train.py <args>`` from ``project``; ``kill_at``: through tests/kill_train.py (a signal at a step)."""
    if kill_at:
        return cli("tests/kill_train.py", [kill_at, *FAST, *XGB, f"cache_dir={project / 'cache'}", *args], cwd=project)
    flags = [a for a in args if a == "-m"]  # Hydra's flags before the overrides
    rest = [a for a in args if a != "-m"]
    return cli("train.py", [*flags, *FAST, *XGB, f"cache_dir={project / 'cache'}", *rest], cwd=project)


def tracker_lines(out: subprocess.CompletedProcess) -> list[str]:
    return [line for line in (out.stdout + out.stderr).splitlines() if "mlflow" in line.lower()
            and ("WARNING" in line or "ERROR" in line or "Traceback" in line)]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A real MLflow tracking server on a free port (its own SQLite store and artifact folder)."""
    root = tmp_path_factory.mktemp("mlflow-server")
    port = free_port()
    log = open(root / "server.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", f"sqlite:///{root / 'store.db'}",
         "--artifacts-destination", str(root / "artifacts"), "--host", "127.0.0.1", "--port", str(port),
         "--workers", "1"], stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 240
    try:
        while True:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                pass
            assert proc.poll() is None, (root / "server.log").read_text()[-2000:]
            assert time.monotonic() < deadline, "mlflow server did not answer /health in time"
            time.sleep(0.2)
        yield url
    finally:
        stop_group(proc)
        log.close()


def runs_cli(project: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kaayko_exp.runs", *args], cwd=project, capture_output=True,
                          text=True, timeout=600, env={**os.environ, "PYTHONPATH": str(ROOT)})


def settle(project: Path, target: str | Path) -> str:
    """Wait for the tracker process to finish a run's (or sweep's) uploads, which go on after the run returns,
    with the command the README gives for it; returns its output."""
    out = runs_cli(project, "sync-tracker", str(target), "--wait")
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    return out.stdout


def tracker_log(target: Path) -> list[str]:
    """The tracker process's fault lines for a run (where they show when the run has returned already)."""
    from kaayko_exp.tracking import state

    state.wait_idle(target, 300)
    log = Path(target) / "tracking" / "tracker.log"
    return log.read_text().splitlines() if log.is_file() else []


def hold_database(project: Path) -> sqlite3.Connection:
    """The default SQLite database, created, then locked by this process as another writer would."""
    db = project / "outputs" / "mlflow.db"
    db.parent.mkdir(exist_ok=True)
    client(sqlite_uri(project)).search_experiments()  # creates the database
    lock = sqlite3.connect(db, isolation_level=None)
    lock.execute("BEGIN EXCLUSIVE")
    return lock


def the_run(uri: str, run_dir: Path, project: Path):
    settle(project, run_dir)
    rec = manifest(run_dir)["tracking"]
    assert rec["tracking_uri"] == uri and rec["complete"] is True, rec
    return client(uri).get_run(rec["run_id"])


def steps(uri: str, run_id: str, key: str = "fit/val_rmse") -> list[int]:
    return [m.step for m in client(uri).get_metric_history(run_id, key)]


# ---------------------------------------------------------------------------- item 1: the config group
def test_the_logger_is_none_by_default_and_a_run_without_it_never_imports_mlflow(tmp_path):
    out = subprocess.run([sys.executable, "-X", "importtime", str(ROOT / "train.py"), *FAST, *XGB,
                          f"cache_dir={tmp_path / 'cache'}", f"hydra.run.dir={RUN}"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    imported = {line.rsplit("|", 1)[1].strip().split(".")[0] for line in out.stderr.splitlines()
                if line.startswith("import time:") and "|" in line}
    assert "xgboost" in imported and "mlflow" not in imported
    assert "tracking" not in manifest(tmp_path / RUN)
    assert not (tmp_path / "outputs" / "mlflow.db").exists()


def test_a_logged_run_leaves_mlflow_imports_to_the_tracker_process(tmp_path):
    # MLflow's and SQLAlchemy's imports (seconds of CPU, holding the GIL) belong to the tracker's own
    # process, not to the training process, which still gets its run mirrored completely
    out = subprocess.run([sys.executable, "-X", "importtime", str(ROOT / "train.py"), *FAST, *XGB, "logger=mlflow",
                          f"cache_dir={tmp_path / 'cache'}", f"hydra.run.dir={RUN}"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    imported = {line.rsplit("|", 1)[1].strip().split(".")[0] for line in out.stderr.splitlines()
                if line.startswith("import time:") and "|" in line}
    assert "xgboost" in imported and not {"mlflow", "sqlalchemy", "alembic"} & imported
    settle(tmp_path, RUN)
    rec = manifest(tmp_path / RUN)["tracking"]
    assert rec["complete"] is True and rec["missed"] is None
    assert client(sqlite_uri(tmp_path)).get_run(rec["run_id"]).info.status == "FINISHED"


@pytest.mark.parametrize("live_after_s, because", [
    (None, "the run ended"),
    pytest.param(0, "live_after_s", marks=pytest.mark.slow),  # the suite's time budget: the default path stays fast
])
def test_the_tracker_waits_for_the_run_to_end_or_for_live_after_s(tmp_path, live_after_s, because):
    # the default logger.live_after_s (60 s) outlasts this run of seconds: the tracker starts its work (MLflow's
    # import, its store, the uploads) only when the run has ended, so it never shares the CPU with the run;
    # logger.live_after_s=0 starts it at once, the run live in MLflow from its first second
    extra = [] if live_after_s is None else [f"logger.live_after_s={live_after_s}"]
    out = train(tmp_path, "logger=mlflow", f"hydra.run.dir={RUN}", *extra)
    assert out.returncode == 0, out.stderr[-3000:]
    settle(tmp_path, RUN)
    man = manifest(tmp_path / RUN)
    completed = datetime.fromisoformat([e for e in man["events"] if e["event"] == "completed"][-1]["time"])
    saved = json.loads((tmp_path / RUN / "tracking" / "state.json").read_text())
    assert saved["live_because"] == because and saved["complete"] is True
    if live_after_s is None:
        assert saved["live_at"] >= completed.timestamp()  # (the event's time is in whole seconds)
        run = client(sqlite_uri(tmp_path)).get_run(man["tracking"]["run_id"])
        assert run.info.start_time / 1000 >= completed.timestamp()  # MLflow first heard of it after it ended


@pytest.mark.parametrize("override, needle, multirun", [
    ("logger.tracking_uri=outputs/mlruns", "file store", False),
    ("logger.tracking_uri=sqlite://outputs/mlflow.db", "three slashes", False),
    ("logger.log_every=0", "logger.log_every=0", False),
    ("logger.live_after_s=-1", "logger.live_after_s=-1", False),
    ("logger.name=wandb", "logger=none", False),
    ("logger.tracking_uri=file:///tmp/mlruns", "file store", True),
])
def test_a_bad_logger_setting_exits_2_before_any_work(tmp_path, override, needle, multirun):
    args = ["logger=mlflow", override, f"hydra.run.dir={RUN}", "hydra.sweep.dir=outputs/multirun/x"]
    out = cli("train.py", [*(["-m", "seed=1,2"] if multirun else []), *FAST, *args], cwd=tmp_path, timeout=120)
    assert out.returncode == 2, out.stdout[-2000:] + out.stderr[-2000:]
    message = out.stderr.strip()
    assert needle in message and "Traceback" not in message and len(message.splitlines()) == 1
    assert list(tmp_path.iterdir()) == []  # nothing written


# ---------------------------------------------------------------------------- item 2: what a run logs
def test_a_run_logs_config_tags_stepped_scores_metrics_and_artifacts_to_a_real_server(server, tmp_path):
    out = train(tmp_path, "logger=mlflow", f"logger.tracking_uri={server}", "logger.log_every=10",
                f"hydra.run.dir={RUN}", "seed=7")
    assert out.returncode == 0, out.stderr[-3000:]
    assert tracker_lines(out) == []
    run_dir = tmp_path / RUN
    run = the_run(server, run_dir, tmp_path)
    man, rep = manifest(run_dir), report(run_dir)
    assert run.info.status == "FINISHED"
    params = run.data.params
    assert params["seed"] == "7" and params["model.name"] == "xgboost" and params["model.params.n_estimators"] == "60"
    assert params["sample_size.rows"] == "3000" and params["logger.name"] == "mlflow"
    tags = run.data.tags
    assert tags["kaayko.run_dir"] == str(run_dir.resolve()) and tags["kaayko.config_hash"] == man["config"]["hash"]
    assert tags["kaayko.data_version"] == man["data"]["fingerprint"]
    assert tags["kaayko.package.xgboost"] == man["package"]["xgboost"]
    assert steps(server, run.info.run_id) == list(range(10, 61, 10))  # every logger.log_every rounds of 60
    metrics = run.data.metrics
    for name, value in rep["metrics"].items():
        if isinstance(value, float):
            assert metrics[f"test/{name}"] == pytest.approx(value)
    for name, value in rep["metrics_after_safety"].items():
        if isinstance(value, float):
            assert metrics[f"test_after_safety/{name}"] == pytest.approx(value)
    assert metrics["val/rmse"] == pytest.approx(rep["val"]["metrics"]["rmse"])
    assert metrics["objective"] == pytest.approx(rep["objective"]["value"])
    names = {f.path for f in client(server).list_artifacts(run.info.run_id)}
    assert {"report.md", "report.json", "manifest.json", "model"} <= names
    assert "model/MLmodel" in {f.path for f in client(server).list_artifacts(run.info.run_id, "model")}
    local = tmp_path / "downloaded"
    client(server).download_artifacts(run.info.run_id, "report.json", str(local))
    assert json.loads((local / "report.json").read_text()) == rep


@pytest.mark.slow
def test_cv_folds_log_their_own_stepped_scores(server, tmp_path):
    out = train(tmp_path, "logger=mlflow", f"logger.tracking_uri={server}", "logger.log_every=20",
                "evaluation.cv_folds=2", "model.params.n_estimators=40", "model.params.early_stopping_rounds=100",
                f"hydra.run.dir={RUN}")  # with early stopping each fold scores a share of its training lakes
    assert out.returncode == 0, out.stderr[-3000:]
    run = the_run(server, tmp_path / RUN, tmp_path)
    for key in ("cv/fold0/val_rmse", "cv/fold1/val_rmse", "fit/val_rmse"):
        assert steps(server, run.info.run_id, key) == [20, 40]
    assert run.data.metrics["cv_mean/rmse"] == pytest.approx(report(tmp_path / RUN)["cv"]["mean"]["rmse"])


def test_the_default_sqlite_uri_is_relative_to_the_project_root(tmp_path):
    out = train(tmp_path, "logger=mlflow", f"hydra.run.dir={RUN}")
    assert out.returncode == 0, out.stderr[-3000:]
    settle(tmp_path, RUN)
    assert (tmp_path / "outputs" / "mlflow.db").is_file()
    uri = "sqlite:///outputs/mlflow.db"  # as the run recorded it; read back through the absolute path
    assert manifest(tmp_path / RUN)["tracking"]["tracking_uri"] == uri
    rec = manifest(tmp_path / RUN)["tracking"]
    c = client(sqlite_uri(tmp_path))
    run = c.get_run(rec["run_id"])
    assert c.get_experiment(run.info.experiment_id).name == "kaayko-exp"
    assert run.info.status == "FINISHED" and run.data.metrics["objective"] == report(tmp_path / RUN)["objective"]["value"]
    assert (tmp_path / "outputs" / "mlartifacts").is_dir()
    assert {"report.md", "report.json", "manifest.json"} <= {f.path for f in c.list_artifacts(rec["run_id"])}


# ---------------------------------------------------------------------------- resume: one MLflow run
def test_a_resumed_run_continues_its_mlflow_run_without_repeating_steps(tmp_path):
    # SIGTERM after round 35; the last checkpoint is round 20, so the resume re-trains rounds 21-35 and
    # reports step 30 again: MLflow must keep one value per step
    args = ["logger=mlflow", "checkpointing.every=20", f"hydra.run.dir={RUN}"]
    out = train(tmp_path, *args, kill_at="fit:35@SIGTERM")
    assert out.returncode == 143, out.stderr[-3000:]
    settle(tmp_path, RUN)
    rec = manifest(tmp_path / RUN)["tracking"]
    uri = sqlite_uri(tmp_path)
    assert client(uri).get_run(rec["run_id"]).info.status == "KILLED"
    assert steps(uri, rec["run_id"]) == [10, 20, 30]
    out = cli("train.py", [f"resume={RUN}"], cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    settle(tmp_path, RUN)
    assert manifest(tmp_path / RUN)["tracking"]["run_id"] == rec["run_id"]
    c = client(uri)
    assert len(c.search_runs([rec["experiment_id"]])) == 1
    assert steps(uri, rec["run_id"]) == [10, 20, 30, 40, 50, 60]
    run = c.get_run(rec["run_id"])
    assert run.info.status == "FINISHED" and "test/rmse" in run.data.metrics


@pytest.mark.slow  # the suite's time budget; test_a_resumed_run_continues_its_mlflow_run_... stays in the fast suite
def test_a_run_resumed_before_its_tracker_created_the_mlflow_run_continues_that_one_run(tmp_path):
    # the database is held locked through the first run and its resume: the first run ends (SIGTERM after
    # round 35) before its tracker could create the MLflow run, so its manifest has no run id yet; the
    # resume's tracker waits for the first one and continues the MLflow run it created
    args = ["logger=mlflow", "checkpointing.every=20", f"hydra.run.dir={RUN}"]
    lock = hold_database(tmp_path)
    try:
        out = train(tmp_path, *args, kill_at="fit:35@SIGTERM")
        assert out.returncode == 143, out.stderr[-3000:]
        assert manifest(tmp_path / RUN)["tracking"]["run_id"] is None
        out = cli("train.py", [f"resume={RUN}"], cwd=tmp_path)
        assert out.returncode == 0, out.stderr[-3000:]
    finally:
        lock.execute("ROLLBACK")
        lock.close()
    settle(tmp_path, RUN)
    rec = manifest(tmp_path / RUN)["tracking"]
    uri = sqlite_uri(tmp_path)
    c = client(uri)
    assert [r.info.run_id for r in c.search_runs([rec["experiment_id"]])] == [rec["run_id"]]
    assert steps(uri, rec["run_id"]) == [10, 20, 30, 40, 50, 60]
    assert c.get_run(rec["run_id"]).info.status == "FINISHED" and rec["complete"] is True


# ---------------------------------------------------------------------------- item 3: sweeps
def test_a_sweep_is_a_parent_run_with_nested_trials_tagged_with_their_states_mirrored_by_one_tracker(tmp_path):
    # a grid of 4 depths; the threshold pruner stops depth 1 at its first report (its val RMSE is far above
    # the others'). Two trials first, then the same sweep resumed to 4: one parent throughout.
    sweep = "outputs/multirun/s"
    args = ["-m", "hydra/sweeper=optuna", "hydra/sweeper/sampler=grid", "model.params.max_depth=choice(1,6,7,8)",
            "hydra.sweeper.pruner={_target_:optuna.pruners.ThresholdPruner,upper:0.6}",
            "model.params.n_estimators=30", "logger=mlflow", f"hydra.sweep.dir={sweep}"]
    out = train(tmp_path, *args, "hydra.sweeper.n_trials=2")
    assert out.returncode == 0, out.stderr[-3000:]
    settle(tmp_path, sweep)
    uri = sqlite_uri(tmp_path)
    parent_id = json.loads((tmp_path / sweep / "tracking.json").read_text())["parent_run_id"]
    assert client(uri).get_run(parent_id).info.status == "FINISHED"
    out = train(tmp_path, *args, "hydra.sweeper.n_trials=4")
    assert out.returncode == 0, out.stderr[-3000:]
    assert tracker_lines(out) == []
    assert "already complete" in settle(tmp_path, sweep)  # the sweep's tracker process did it all
    # the basic launcher runs the trials in the sweep's process: they (and the parent's end) shared one tracker
    # process, which imported MLflow and set up its store once; the first sweep had one of its own
    states = [json.loads((tmp_path / sweep / f"{n}" / "tracking" / "state.json").read_text()) for n in range(4)]
    assert len({s["pid"] for s in states[:2]}) == 1 and len({s["pid"] for s in states[2:]}) == 1
    sweep_state = json.loads((tmp_path / sweep / "tracking" / "state.json").read_text())
    assert sweep_state["pid"] == states[3]["pid"] != states[0]["pid"] and sweep_state["complete"] is True
    c = client(uri)
    parent = c.get_run(parent_id)
    exp = parent.info.experiment_id
    assert [r.info.run_id for r in c.search_runs([exp], "tags.`kaayko.role` = 'sweep'")] == [parent_id]
    children = c.search_runs([exp], f"tags.mlflow.parentRunId = '{parent_id}'")
    trials = json.loads((tmp_path / sweep / "sweep.json").read_text())["trials"]  # the sweeper's own record
    assert len(children) == len(trials) == 4
    by_number = {int(r.data.tags["trial_number"]): r for r in children}
    for t in trials:
        child = by_number[t["number"]]
        assert child.data.tags["trial_state"] == t["state"]
        assert child.info.status == {"COMPLETE": "FINISHED", "PRUNED": "KILLED"}[t["state"]]
        assert child.data.tags["kaayko.run_dir"] == str((tmp_path / sweep / t["run_dir"]).resolve())
        assert manifest(tmp_path / sweep / t["run_dir"])["tracking"]["run_id"] == child.info.run_id
    pruned = [r for r in children if r.data.tags["trial_state"] == "PRUNED"]
    assert [r.data.tags["trial.params.model.params.max_depth"] for r in pruned] == ["1"]
    best = min((t for t in trials if t["state"] == "COMPLETE"), key=lambda t: t["values"][0])
    assert parent.info.status == "FINISHED"
    assert parent.data.tags["best_trial"] == str(best["number"])
    assert float(parent.data.tags["best_value"]) == pytest.approx(best["values"][0])
    assert parent.data.params["sampler"] == "GridSampler" and parent.data.params["pruner"] == "ThresholdPruner"
    assert parent.data.params["study_name"] == parent.data.tags["study_name"]
    assert parent.data.tags["trials_complete"] == "3" and parent.data.tags["trials_pruned"] == "1"


# ---------------------------------------------------------------------------- item 6: faults never cost a run
def test_an_unreachable_server_is_one_warning_line_and_sync_uploads_the_run_later(server, tmp_path):
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    out = train(tmp_path, "logger=mlflow", f"logger.tracking_uri={dead}", f"hydra.run.dir={RUN}")
    assert out.returncode == 0, out.stderr[-3000:]
    run_dir = tmp_path / RUN
    logged = tracker_log(run_dir)  # the fault may come after the run returned: the tracker's log has it
    assert len(logged) == 1 and f"sync-tracker {RUN}" in logged[0], logged
    lines = tracker_lines(out)  # and the run printed it if it came while the run was alive
    assert len(lines) <= 1 and all(f"sync-tracker {RUN}" in line for line in lines), lines
    man = manifest(run_dir)
    assert man["status"] == "completed" and man["tracking"]["complete"] is False
    status = subprocess.run([sys.executable, "-m", "kaayko_exp.runs", "status", RUN], cwd=tmp_path, capture_output=True,
                            text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert "incomplete (MlflowException" in status.stdout and f"sync-tracker {RUN}" in status.stdout
    assert (run_dir / "report.json").is_file() and (run_dir / "model").is_dir()
    sync = subprocess.run([sys.executable, "-m", "kaayko_exp.runs", "sync-tracker", RUN, "--tracking-uri", server],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert sync.returncode == 0, sync.stderr[-3000:]
    run = the_run(server, run_dir, tmp_path)
    assert run.info.status == "FINISHED" and steps(server, run.info.run_id) == [10, 20, 30, 40, 50, 60]
    assert run.data.metrics["test/rmse"] == pytest.approx(report(run_dir)["metrics"]["rmse"])
    assert {"report.md", "report.json", "manifest.json"} <= {f.path for f in client(server).list_artifacts(run.info.run_id)}


@pytest.mark.slow
def test_a_database_locked_longer_than_the_timeout_is_one_warning_line_and_sync_fills_it_later(tmp_path):
    lock = hold_database(tmp_path)
    try:
        out = train(tmp_path, "logger=mlflow", f"hydra.run.dir={RUN}", "logger.timeout_s=1")
        assert out.returncode == 0, out.stderr[-3000:]
        logged = tracker_log(tmp_path / RUN)  # the tracker retried for logger.timeout_s, then gave up
    finally:
        lock.execute("ROLLBACK")
        lock.close()
    assert len(logged) == 1 and "locked" in logged[0], logged
    assert len(tracker_lines(out)) <= 1
    assert manifest(tmp_path / RUN)["status"] == "completed"
    sync = runs_cli(tmp_path, "sync-tracker", RUN)
    assert sync.returncode == 0, sync.stderr[-3000:]
    rec = manifest(tmp_path / RUN)["tracking"]
    assert rec["complete"] is True
    got = client(sqlite_uri(tmp_path)).get_run(rec["run_id"])
    assert got.info.status == "FINISHED" and got.data.metrics["objective"] == report(tmp_path / RUN)["objective"]["value"]
    again = runs_cli(tmp_path, "sync-tracker", RUN)
    assert again.returncode == 0 and "already complete" in again.stdout


# ---------------------------------------------------------------------------- the tracker works after the run
def test_the_run_returns_while_its_tracker_still_uploads_and_the_tracker_finishes_after(tmp_path):
    # another writer holds the database for as long as this test wants: the tracker cannot upload anything
    # until the lock goes, yet the run neither waits for it nor loses anything
    lock = hold_database(tmp_path)
    try:
        out = train(tmp_path, "logger=mlflow", f"hydra.run.dir={RUN}")
        assert out.returncode == 0, out.stderr[-3000:]
        assert tracker_lines(out) == []
        run_dir = tmp_path / RUN
        from kaayko_exp.tracking import state

        tracker = state.load(run_dir)
        assert state.busy(run_dir) and tracker["sections"] == [] and tracker["finished"] is False
        os.kill(tracker["pid"], 0)  # alive after the run returned: its own process, in a session of its own
        assert os.getsid(tracker["pid"]) == tracker["pid"]
        assert os.sched_getscheduler(tracker["pid"]) == os.SCHED_IDLE  # it uses only cores the run leaves idle
        rec = manifest(run_dir)["tracking"]
        assert rec["complete"] is False and rec["pending"] is True and rec["missed"] is None
        status = runs_cli(tmp_path, "status", RUN)
        assert f"sync-tracker {RUN} --wait" in status.stdout
    finally:
        lock.execute("ROLLBACK")
        lock.close()
    assert "already complete" in settle(tmp_path, RUN)  # the tracker uploaded it all, after the run
    done = state.load(run_dir)
    assert done["pid"] == tracker["pid"] and done["complete"] is True
    assert done["sections"] == ["final", "files", "model", "status"]
    rec = manifest(run_dir)["tracking"]  # the run id, recorded in the manifest by the tracker
    assert rec["complete"] is True and rec["pending"] is False and rec["run_id"] == done["run_id"]
    got = client(sqlite_uri(tmp_path)).get_run(rec["run_id"])
    assert got.info.status == "FINISHED" and got.data.metrics["objective"] == report(run_dir)["objective"]["value"]


def test_a_tracker_killed_mid_queue_leaves_a_record_that_sync_completes(tmp_path):
    import signal

    from kaayko_exp.tracking import state

    lock = hold_database(tmp_path)
    try:
        out = train(tmp_path, "logger=mlflow", f"hydra.run.dir={RUN}")
        assert out.returncode == 0, out.stderr[-3000:]
        run_dir = tmp_path / RUN
        pid = state.load(run_dir)["pid"]
        os.kill(pid, signal.SIGKILL)
        assert state.wait_idle(run_dir, 60)  # the kernel dropped its lock
    finally:
        lock.execute("ROLLBACK")
        lock.close()
    left = state.load(run_dir)
    assert left["finished"] is False and left["sections"] == []
    assert manifest(run_dir)["tracking"]["complete"] is False
    sync = runs_cli(tmp_path, "sync-tracker", RUN)
    assert sync.returncode == 0 and "synced" in sync.stdout, sync.stdout + sync.stderr[-3000:]
    rec = manifest(run_dir)["tracking"]
    assert rec["complete"] is True and state.load(run_dir)["complete"] is True
    c = client(sqlite_uri(tmp_path))
    got = c.get_run(rec["run_id"])
    assert got.info.status == "FINISHED" and got.data.metrics["objective"] == report(run_dir)["objective"]["value"]
    assert {"report.json", "manifest.json", "model"} <= {f.path for f in c.list_artifacts(rec["run_id"])}
    assert steps(sqlite_uri(tmp_path), rec["run_id"]) == [10, 20, 30, 40, 50, 60]


def test_sync_of_a_path_that_holds_no_run_is_one_paragraph_and_exit_2(tmp_path):
    out = subprocess.run([sys.executable, "-m", "kaayko_exp.runs", "sync-tracker", "outputs/nothing"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1 and "Traceback" not in out.stderr


@pytest.mark.slow
def test_sync_of_a_sweep_made_while_the_server_was_down_nests_its_trials_under_one_parent(server, tmp_path):
    dead = f"http://127.0.0.1:{free_port()}"
    sweep = "outputs/multirun/s"
    out = train(tmp_path, "-m", "seed=1,2", "model.params.n_estimators=20", "logger=mlflow",
                f"logger.tracking_uri={dead}", f"hydra.sweep.dir={sweep}")
    assert out.returncode == 0, out.stderr[-3000:]
    assert [len(tracker_log(tmp_path / sweep / n)) for n in ("0", "1")] == [1, 1]  # one line per run
    sync = runs_cli(tmp_path, "sync-tracker", sweep, "--tracking-uri", server)
    assert sync.returncode == 0, sync.stderr[-3000:]
    c = client(server)
    parent_id = json.loads((tmp_path / sweep / "tracking.json").read_text())["parent_run_id"]
    children = c.search_runs([c.get_run(parent_id).info.experiment_id], f"tags.mlflow.parentRunId = '{parent_id}'")
    assert sorted(r.data.tags["trial_number"] for r in children) == ["0", "1"]
    assert {r.data.tags["trial_state"] for r in children} == {"COMPLETE"}
    assert c.get_run(parent_id).info.status == "FINISHED"


@pytest.mark.parametrize("uri, needs", [("sqlite:///outputs/mlflow.db", "sqlalchemy"),
                                        ("http://127.0.0.1:5000", "mlflow")])
def test_a_missing_mlflow_package_is_named_with_the_install_command(monkeypatch, uri, needs):
    import importlib.util

    from kaayko_exp.errors import ConfigError
    from kaayko_exp.tracking import check_logger
    from runhelpers import compose_train

    cfg = compose_train(["logger=mlflow", f"logger.tracking_uri={uri}"])
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == needs else real(name, *a))
    with pytest.raises(ConfigError, match=rf"needs {needs}.*pip install -e \"\.\[mlflow\]\""):
        check_logger(cfg)
