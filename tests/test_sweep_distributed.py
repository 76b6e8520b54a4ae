"""Cross-process sweeps with the optuna5 sweeper: process launchers (joblib, submitit_local) and several
worker processes on one study (journal file, PostgreSQL).

Every test runs a tiny generic Hydra app (written into tmp_path; it knows nothing of Kaayko) as real
``python app.py -m`` processes. The app records, per job, which process ran it and which trial
``current_trial()`` handed it, and coordinates jobs through marker files in ``sync_dir`` (waits with a
deadline, never timed sleeps), so orderings are forced, then read back from the study's own timestamps.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from postgres import postgres_server, postgres_url  # noqa: F401  (fixtures)

optuna = pytest.importorskip("optuna")

ROOT = Path(__file__).resolve().parents[1]

APP = textwrap.dedent('''
    import json, os, time
    from pathlib import Path

    import hydra
    import optuna
    from hydra.core.hydra_config import HydraConfig


    def wait_for(condition, what, deadline_s=90.0):
        end = time.monotonic() + deadline_s
        while not condition():
            if time.monotonic() > end:
                raise RuntimeError(f"gave up waiting for {what}")
            time.sleep(0.02)


    @hydra.main(config_path=".", config_name="app", version_base="1.3")
    def main(cfg):
        from hydra_plugins.optuna5_sweeper.trial import current_trial

        job = int(HydraConfig.get().job.num)
        out = Path(HydraConfig.get().runtime.output_dir)
        sync = Path(cfg.sync_dir)
        trial = current_trial()
        record = {"pid": os.getpid(), "job": job, "trial": None if trial is None else trial.number,
                  "x": cfg.x, "y": cfg.y}
        with open(out / "owners.txt", "a") as fh:      # one line per job that ever ran in this dir
            fh.write(json.dumps(record) + "\\n")
        (sync / f"started_{job}").touch()
        value = (cfg.x - 0.3) ** 2 + 0.01 * cfg.y
        if trial is not None:
            trial.report(value, step=0)                # the job-side channel, through the storage
        if job in cfg.prune_jobs:
            raise optuna.TrialPruned(f"job {job} pruned on purpose")
        if cfg.mode == "pair":
            # the first trial of each worker waits until two workers are running trials
            pids = sync / "pids"
            pids.mkdir(exist_ok=True)
            (pids / str(os.getpid())).touch()
            wait_for(lambda: len(list(pids.iterdir())) >= 2, "a second worker process")
        elif cfg.mode == "hang":  # train "forever" (until a marker the test never writes)
            (sync / f".pid_{job}").write_text(str(os.getpid()))
            (sync / f".pid_{job}").rename(sync / f"pid_{job}")
            wait_for(lambda: (sync / "never").exists(), "nothing", deadline_s=600)
        elif cfg.mode == "outage":
            # train (report every 20 ms) until the test has restarted the database, then 3 steps more
            step, end = 1, time.monotonic() + 120
            while not (sync / "restarted").exists() and time.monotonic() < end:
                trial.report(value + 1.0 / step, step)
                trial.should_prune()
                step += 1
                time.sleep(0.02)
            for _ in range(3):
                trial.report(value + 1.0 / step, step)
                step += 1
        elif cfg.mode == "slots":
            # job 1 overlaps job 0; job 0 only ends after job 2 has run, which needs job 1's freed slot
            if job == 1:
                wait_for(lambda: (sync / "started_0").exists(), "job 0 to run beside job 1")
            if job == 0:
                wait_for(lambda: (sync / "done_2").exists(), "job 2 to run in the slot job 1 freed")
        (sync / f"done_{job}").touch()
        return value


    if __name__ == "__main__":
        main()
''')

APP_YAML = textwrap.dedent('''
    defaults:
      - override hydra/sweeper: optuna
      - _self_
    x: 0.0
    y: 0
    mode: plain
    sync_dir: ???
    prune_jobs: []
    hydra:
      sweeper:
        params:
          x: interval(-1, 1)
          y: range(0, 3)
''')


def write_app(tmp_path: Path) -> Path:
    app_dir = tmp_path / "app"
    app_dir.mkdir()
    (app_dir / "app.py").write_text(APP)
    (app_dir / "app.yaml").write_text(APP_YAML)
    (tmp_path / "sync").mkdir()
    return app_dir


def sweep_cmd(tmp_path: Path, sweep_dir: Path, *overrides: str) -> list[str]:
    return [sys.executable, str(tmp_path / "app" / "app.py"), "-m", f"hydra.sweep.dir={sweep_dir}",
            f"sync_dir={tmp_path / 'sync'}", *overrides]


def env() -> dict:
    e = dict(os.environ)
    e["PYTHONPATH"] = os.pathsep.join([str(ROOT), e.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    e["HYDRA_FULL_ERROR"] = "1"
    return e


def run_sweep(tmp_path: Path, sweep_dir: Path, *overrides: str, timeout: int = 240):
    proc = subprocess.run(sweep_cmd(tmp_path, sweep_dir, *overrides), cwd=tmp_path, env=env(),
                          capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def run_workers(tmp_path: Path, sweep_dir: Path, n: int, *overrides: str, timeout: int = 240) -> list[int]:
    """Start ``n`` sweep processes on the same study at once; returns their pids after all succeed."""
    logs = [tmp_path / f"worker{i}.log" for i in range(n)]
    procs = []
    for log in logs:
        with open(log, "w") as fh:
            procs.append(subprocess.Popen(sweep_cmd(tmp_path, sweep_dir, *overrides), cwd=tmp_path, env=env(),
                                          stdout=fh, stderr=subprocess.STDOUT, text=True))
    try:
        pending = list(procs)
        while pending:  # as soon as one worker fails, stop the others and show its output
            for p in list(pending):
                try:
                    p.wait(timeout=0.2)
                except subprocess.TimeoutExpired:
                    continue
                pending.remove(p)
                assert p.returncode == 0, logs[procs.index(p)].read_text()[-4000:]
            timeout -= 0.2 * len(pending)
            assert timeout > 0, "the workers did not finish in time"
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    return [p.pid for p in procs]


def journal_study(sweep_dir: Path, name: str = "app"):
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    journal = sweep_dir / "optuna.journal"
    assert journal.exists(), f"the default storage should be {journal}"
    return optuna.load_study(study_name=name, storage=JournalStorage(JournalFileBackend(str(journal))))


def job_num(trial) -> int:
    value = trial.system_attrs.get("job_num", trial.user_attrs.get("job_num"))
    assert value is not None, f"trial {trial.number} has no job_num attr"
    return int(value)


def owners(sweep_dir: Path, job: int) -> list[dict]:
    path = sweep_dir / str(job) / "owners.txt"
    assert path.exists(), f"job dir {path.parent} holds no job output"
    return [json.loads(line) for line in path.read_text().splitlines()]


def assert_one_job_per_dir(sweep_dir: Path, study) -> list[dict]:
    """Each trial ran exactly once, in its own job dir, and its job saw that very trial."""
    jobs = [job_num(t) for t in study.trials]
    assert len(set(jobs)) == len(jobs), f"two trials share a job dir: {sorted(jobs)}"
    numbers = [t.number for t in study.trials]
    assert len(set(numbers)) == len(numbers)
    records = []
    for t in study.trials:
        recs = owners(sweep_dir, job_num(t))
        assert len(recs) == 1, f"job dir {job_num(t)} was used by {len(recs)} jobs: {recs}"
        assert recs[0]["trial"] == t.number, "current_trial() handed the job another trial"
        assert recs[0]["x"] == pytest.approx(t.params["x"]) and recs[0]["y"] == t.params["y"]
        records.append(recs[0])
    numbered_dirs = sorted(int(p.name) for p in sweep_dir.iterdir() if p.is_dir() and p.name.isdigit())
    assert numbered_dirs == sorted(jobs), "job dirs on disk differ from the study's trials"
    return records


def test_joblib_two_trials_at_once_and_a_finished_trial_frees_its_slot(tmp_path):
    write_app(tmp_path)
    sweep_dir = tmp_path / "sweep"
    run_sweep(tmp_path, sweep_dir, "mode=slots", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2",
              "hydra.sweeper.n_jobs=2", "hydra.sweeper.n_trials=3")
    study = journal_study(sweep_dir)
    assert [t.state.name for t in study.trials] == ["COMPLETE"] * 3
    by_job = {job_num(t): t for t in study.trials}
    t0, t1, t2 = by_job[0], by_job[1], by_job[2]
    # trials 0 and 1 ran at the same time
    assert t1.datetime_start < t0.datetime_complete and t0.datetime_start < t1.datetime_complete
    # trial 2 took the slot trial 1 freed, while trial 0 still ran (no waiting for the batch's slowest)
    assert t1.datetime_complete <= t2.datetime_start < t0.datetime_complete
    records = assert_one_job_per_dir(sweep_dir, study)
    assert len({r["pid"] for r in records}) >= 2, "joblib ran every trial in one process"
    assert all(t.intermediate_values == {0: t.value} for t in study.trials)


def test_joblib_pruned_job_is_pruned_in_the_study(tmp_path):
    write_app(tmp_path)
    sweep_dir = tmp_path / "sweep"
    run_sweep(tmp_path, sweep_dir, "prune_jobs=[1]", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2",
              "hydra.sweeper.n_jobs=2", "hydra.sweeper.n_trials=4")
    study = journal_study(sweep_dir)
    states = {job_num(t): t.state.name for t in study.trials}
    assert states[1] == "PRUNED"
    # n_trials counts COMPLETE + PRUNED
    assert sorted(states.values()) == ["COMPLETE", "COMPLETE", "COMPLETE", "PRUNED"]
    assert_one_job_per_dir(sweep_dir, study)


def test_submitit_local_runs_a_small_study(tmp_path):
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher")
    write_app(tmp_path)
    sweep_dir = tmp_path / "sweep"
    proc = subprocess.Popen(sweep_cmd(tmp_path, sweep_dir, "prune_jobs=[2]", "hydra/launcher=submitit_local",
                                      "hydra.launcher.timeout_min=5", "hydra.sweeper.n_trials=3"),
                            cwd=tmp_path, env=env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    out = proc.communicate(timeout=240)[0]
    assert proc.returncode == 0, out[-4000:]
    study = journal_study(sweep_dir)
    states = {job_num(t): t.state.name for t in study.trials}
    assert states == {0: "COMPLETE", 1: "COMPLETE", 2: "PRUNED"}
    records = assert_one_job_per_dir(sweep_dir, study)
    # the jobs ran in submitit's processes, not in the sweeper's
    assert proc.pid not in {r["pid"] for r in records}
    assert all(t.intermediate_values == {0: t.value} for t in study.trials if t.state.name == "COMPLETE")


def _two_workers_one_study(tmp_path: Path, n_trials: int, *storage_overrides: str, load):
    write_app(tmp_path)
    sweep_dir = tmp_path / "sweep"
    pids = run_workers(tmp_path, sweep_dir, 2, "mode=pair", f"hydra.sweeper.n_trials={n_trials}",
                       *storage_overrides)
    study = load(sweep_dir)
    # two workers asking for the last slot at the same moment: the later one is closed unrun as FAIL "surplus"
    surplus = [t for t in study.trials if str(t.system_attrs.get("failure", "")).startswith("surplus")]
    assert all(t.state.name == "FAIL" and not t.intermediate_values for t in surplus)
    states = [t.state.name for t in study.trials if t not in surplus]
    assert "FAIL" not in states and "RUNNING" not in states, states
    # n_trials is the study's total, never overshot
    assert states.count("COMPLETE") == n_trials
    assert sorted(t.number for t in study.trials) == list(range(len(study.trials)))
    records = assert_one_job_per_dir(sweep_dir, study)
    # both worker processes ran trials of this one study (the basic launcher runs jobs in the worker)
    assert {r["pid"] for r in records} == set(pids)


def test_two_worker_processes_share_one_journal_study(tmp_path):
    _two_workers_one_study(tmp_path, 6, load=journal_study)


def test_two_worker_processes_share_one_postgres_study(tmp_path, postgres_url):
    def load(_sweep_dir):
        return optuna.load_study(study_name="shared", storage=postgres_url)

    _two_workers_one_study(tmp_path, 6, f"hydra.sweeper.storage={postgres_url}", "hydra.sweeper.study_name=shared",
                           load=load)


def _wait_until(condition, what: str, procs, deadline_s: float = 120.0) -> None:
    import time

    end = time.monotonic() + deadline_s
    while not condition():
        dead = [p for p in procs if p.poll() is not None]
        assert not dead, f"a worker ended (rc {dead[0].returncode}) before {what}"
        assert time.monotonic() < end, f"gave up waiting for {what}"
        time.sleep(0.02)


def test_a_database_restart_during_trials_is_ridden_out_and_each_worker_ends_consistent(tmp_path, postgres_server):
    import socket

    import yaml

    url = postgres_server.create_database()
    write_app(tmp_path)
    sync = tmp_path / "sync"
    dirs = [tmp_path / "sweep_a", tmp_path / "sweep_b"]  # two workers, each with its own sweep directory
    overrides = ["mode=outage", "hydra.sweeper.n_trials=4", f"hydra.sweeper.storage={url}",
                 "hydra.sweeper.study_name=outage"]
    logs = [tmp_path / f"worker{i}.log" for i in range(2)]
    procs = []
    for d, log in zip(dirs, logs):
        with open(log, "w") as fh:
            procs.append(subprocess.Popen(sweep_cmd(tmp_path, d, *overrides), cwd=tmp_path, env=env(), stdout=fh,
                                          stderr=subprocess.STDOUT, text=True))
    try:
        _wait_until(lambda: len(list(sync.glob("started_*"))) >= 2, "a trial running in each worker", procs)
        postgres_server.restart()  # every pooled connection of both workers is cut
        (sync / "restarted").touch()
        for p, log in zip(procs, logs):
            p.wait(timeout=240)
            assert p.returncode == 0, log.read_text()[-4000:]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    seen = "".join(log.read_text() for log in logs)
    assert "retrying for up to" in seen or "not delivered" in seen  # the outage did hit the workers
    study = optuna.load_study(study_name="outage", storage=url)
    counted = [t for t in study.trials if t.state.name == "COMPLETE"]
    assert len(counted) == 4, [(t.number, t.state.name, t.system_attrs.get("failure")) for t in study.trials]
    assert all(t.state.name in ("COMPLETE",) or str(t.system_attrs.get("failure", "")).startswith("surplus")
               for t in study.trials)
    for t in counted:  # reports that failed during the outage were delivered later: no step is missing
        steps = sorted(t.intermediate_values)
        assert steps == list(range(len(steps))), (t.number, steps)
    by_number = {t.number: t.state.name for t in study.trials}
    best = study.best_trial
    for d in dirs:
        doc = json.loads((d / "sweep.json").read_text())
        assert {r["number"]: r["state"] for r in doc["trials"]} == by_number, d
        results = yaml.safe_load((d / "optimization_results.yaml").read_text())
        assert results["best_trial_number"] == best.number
        assert results["best_run_host"] == socket.gethostname()
        run_dir = d / results["best_run_dir"]  # relative here, absolute when the other worker ran it
        assert [r["trial"] for r in owners(run_dir.parent, int(run_dir.name))] == [best.number]


def test_an_unreachable_database_is_one_paragraph_with_the_password_hidden(tmp_path):
    # issue 16 item 8, the command as a user types it (train.py, the README's storage override)
    url = "postgresql+psycopg2://u:secret@127.0.0.1:9/none"  # port 9: nothing listens
    r = subprocess.run([sys.executable, str(ROOT / "train.py"), "-m", "hydra/sweeper=optuna",
                        f"hydra.sweeper.storage={url}"], cwd=tmp_path, env=env() | {"HYDRA_FULL_ERROR": ""},
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2
    assert "Traceback" not in r.stdout + r.stderr
    paragraph = r.stderr.strip().split("\n\n")[0]
    assert "\n" not in paragraph
    assert "postgresql+psycopg2://u:***@127.0.0.1:9/none cannot be reached" in paragraph
    assert "Connection refused" in paragraph and "secret" not in r.stdout + r.stderr
    assert list(tmp_path.iterdir()) == []  # nothing written: no sweep directory, no multirun.yaml


def test_joblib_workers_end_when_the_sweep_process_is_killed(tmp_path):
    # issue 16 item 14: kill -9 of the sweep process must not leave loky workers training
    import signal
    import time

    write_app(tmp_path)
    sync = tmp_path / "sync"
    proc = subprocess.Popen(sweep_cmd(tmp_path, tmp_path / "sweep", "mode=hang", "hydra/launcher=joblib",
                                      "hydra.launcher.n_jobs=2", "hydra.sweeper.n_jobs=2", "hydra.sweeper.n_trials=2"),
                            cwd=tmp_path, env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    pids: list = []
    try:
        _wait_until(lambda: len(list(sync.glob("pid_*"))) == 2, "two jobs training in joblib workers", [proc])
        pids = [int(f.read_text()) for f in sync.glob("pid_*")]
        assert proc.pid not in pids
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)

        def alive(pid: int) -> bool:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return False
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] if Path(
                f"/proc/{pid}").exists() else "X"
            return state not in ("Z", "X")  # a zombie has ended

        end = time.monotonic() + 30
        while any(alive(p) for p in pids):
            assert time.monotonic() < end, f"joblib workers {[p for p in pids if alive(p)]} outlived the sweep"
            time.sleep(0.05)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def test_sigterm_to_a_joblib_sweep_stops_the_jobs_in_its_worker_processes(tmp_path):
    # issue 16 item 6 under hydra/launcher=joblib: the jobs run in loky processes, which the signal to the
    # sweep process does not reach by itself
    import signal

    write_app(tmp_path)
    sync = tmp_path / "sync"
    sweep_dir = tmp_path / "sweep"
    proc = subprocess.Popen(sweep_cmd(tmp_path, sweep_dir, "mode=hang", "hydra/launcher=joblib",
                                      "hydra.launcher.n_jobs=2", "hydra.sweeper.n_jobs=2", "hydra.sweeper.n_trials=2"),
                            cwd=tmp_path, env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _wait_until(lambda: len(list(sync.glob("pid_*"))) == 2, "two jobs training in joblib workers", [proc])
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 143, out[-3000:] + err[-3000:]
    assert "sweep stopped by SIGTERM: 2 running trial(s)" in err and "Traceback" not in out + err
    study = journal_study(sweep_dir)
    failed = [t for t in study.trials if t.state.name == "FAIL"]
    assert sorted(t.system_attrs["failure"] for t in failed) == ["interrupted by SIGTERM"] * 2
    assert len([t for t in study.trials if t.state.name == "WAITING"]) == 2  # queued again


def test_storage_calls_retry_a_lost_connection_then_stop_in_one_paragraph(tmp_path, monkeypatch):
    import time

    from sqlalchemy.exc import OperationalError

    from hydra_plugins.optuna5_sweeper import _storage

    storage = _storage.rdb_storage(f"sqlite:///{tmp_path / 'db.sqlite'}", retry_s=0.5)
    study_id = storage.create_new_study([optuna.study.StudyDirection.MINIMIZE], "s")
    calls = {"n": 0}
    real = optuna.storages.RDBStorage.get_study_name_from_id

    def flaky(self, sid):
        calls["n"] += 1
        if calls["n"] <= 2:  # the server restarts: two calls fail, the third reaches it
            raise OperationalError("SELECT", {}, Exception("server closed the connection unexpectedly"))
        return real(self, sid)

    monkeypatch.setattr(optuna.storages.RDBStorage, "get_study_name_from_id", flaky)
    monkeypatch.setattr(_storage.RetryingRDBStorage, "get_study_name_from_id",
                        _storage._retrying("get_study_name_from_id", flaky))
    assert storage.get_study_name_from_id(study_id) == "s" and calls["n"] == 3
    with _storage.no_wait(), pytest.raises(OperationalError):  # a job's report: tried once
        calls["n"] = 0
        storage.get_study_name_from_id(study_id)

    def down(self, sid):
        raise OperationalError("SELECT", {}, Exception("connection refused"))

    monkeypatch.setattr(_storage.RetryingRDBStorage, "get_study_name_from_id", _storage._retrying("x", down))
    storage.url = "postgresql://u:secret@db/optuna"
    t0 = time.monotonic()
    with pytest.raises(_storage.StorageUnavailableError) as err:
        storage.get_study_name_from_id(study_id)
    assert time.monotonic() - t0 >= 0.5
    text = str(err.value)
    assert "postgresql://u:***@db/optuna" in text and "secret" not in text and "storage_retry_s" in text
    assert "\n" not in text
