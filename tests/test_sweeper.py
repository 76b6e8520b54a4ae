"""End-to-end sweeps of the tiny Hydra app in tests/sweeper_app/ through `hydra/sweeper=optuna`.

Each test runs the app as users do (`python my_app.py -m hydra/sweeper=optuna ...`) in a temporary
directory; the app's fit loop writes one line per step to <job dir>/steps.txt and reports to its trial.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "tests" / "sweeper_app" / "my_app.py"
BASE = ["-m", "hydra/sweeper=optuna", "hydra.sweeper.write_plots=false", "hydra.sweep.dir=sweep"]


def _env():
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    env.pop("HYDRA_FULL_ERROR", None)
    return env


def run_app(cwd, *args, base=BASE):
    return subprocess.run([sys.executable, str(APP), *base, *args], cwd=cwd, env=_env(), capture_output=True,
                          text=True, timeout=300)


def start_app(cwd, *args):
    return subprocess.Popen([sys.executable, str(APP), *BASE, *args], cwd=cwd, env=_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def load(cwd):
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(
        str(Path(cwd) / "sweep" / "optuna.journal")))
    return optuna.load_study(study_name="my_app", storage=storage)


def steps_run(cwd, job_num):
    return len((Path(cwd) / "sweep" / str(job_num) / "steps.txt").read_text().split())


def job_dirs(cwd):
    return sorted(int(p.name) for p in (Path(cwd) / "sweep").iterdir() if p.is_dir() and p.name.isdigit())


def states(study):
    return [t.state.name for t in study.get_trials()]


def test_pruned_job_stops_at_once_and_outputs_are_written(tmp_path):
    # grid over x in {2, 9}; y=0: objective (x-2)^2 + 1 -> 1 and 50; reports are final + (8-step)/8,
    # so x=9 reports 51 > upper=10 at step 0 and is pruned there; x=2 runs all 8 steps.
    r = run_app(tmp_path, "hydra/sweeper/sampler=grid", "hydra.sweeper.n_trials=5", "x=choice(2.0,9.0)",
                "hydra/sweeper/pruner=threshold", "hydra.sweeper.pruner.upper=10", "hydra.sweeper.write_plots=true")
    assert r.returncode == 0, r.stderr
    study = load(tmp_path)
    by_x = {t.params["x"]: t for t in study.get_trials()}
    assert len(study.get_trials()) == 2  # the grid has 2 points: n_trials lowered to 2
    assert by_x[9.0].state.name == "PRUNED" and by_x[2.0].state.name == "COMPLETE"
    assert steps_run(tmp_path, by_x[9.0].user_attrs["job_num"]) == 1
    assert steps_run(tmp_path, by_x[2.0].user_attrs["job_num"]) == 8
    assert by_x[2.0].value == 1.0
    sweep = tmp_path / "sweep"
    best = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    assert best["best_params"] == {"x": 2.0} and best["best_value"] == 1.0
    assert best["best_run_dir"] == str(by_x[2.0].user_attrs["job_num"])
    manifest = json.loads((sweep / "sweep.json").read_text())
    assert manifest["kind"] == "optuna-sweep" and manifest["n_trials"] == 2
    assert manifest["directions"] == ["minimize"]
    rows = {t["params"]["x"]: t for t in manifest["trials"]}
    assert rows[9.0]["state"] == "PRUNED" and rows[9.0]["steps"] == 1 and rows[2.0]["steps"] == 8
    assert (sweep / rows[2.0]["run_dir"]).is_dir()
    csv_lines = (sweep / "trials.csv").read_text().splitlines()
    assert csv_lines[0] == "number,state,values,params_x,steps,duration_s,run_dir,failure"
    assert len(csv_lines) == 3
    assert (sweep / "plots" / "optimization_history.png").stat().st_size > 0
    assert "plots/optimization_history.png" in (sweep / "sweep_report.md").read_text()
    assert "trial 2/2" in r.stdout and "PRUNED" in r.stdout and "best 1 (trial" in r.stdout


def test_trials_run_with_the_sweeps_long_lived_objects_frozen(tmp_path):
    # the sweep freezes what it holds for its whole life before its first trial and again after it (gc.freeze),
    # so the trials' full collections do not rescan it
    r = run_app(tmp_path, "hydra.sweeper.n_trials=3", "hydra.sweeper.sampler.seed=1", "steps=2")
    assert r.returncode == 0, r.stderr[-3000:]
    frozen = [int((tmp_path / "sweep" / str(n) / "frozen.txt").read_text()) for n in job_dirs(tmp_path)]
    assert len(frozen) == 3 and frozen[0] > 0
    assert frozen[1] > frozen[0] and frozen[2] > frozen[0]  # what the first trial added was frozen after it


def test_kill_mid_trial_then_resume_finishes_exactly_n_trials(tmp_path):
    args = ["hydra.sweeper.n_trials=5", "x=interval(0,3)", "kill_at_job=2", "hydra/sweeper/sampler=random",
            "hydra.sweeper.sampler.seed=3"]
    first = run_app(tmp_path, *args)
    assert first.returncode == -9  # the app SIGKILLed itself inside job 2
    assert states(load(tmp_path)) == ["COMPLETE", "COMPLETE", "RUNNING"]
    second = run_app(tmp_path, *args)
    assert second.returncode == 0, second.stderr
    assert "marked FAIL and its parameters queued again" in second.stdout
    trials = load(tmp_path).get_trials()
    counted = [t for t in trials if t.state.name in ("COMPLETE", "PRUNED")]
    assert len(counted) == 5
    dead = trials[2]
    assert dead.state.name == "FAIL"
    rerun = [t for t in counted if t.user_attrs.get("requeued_from") == 2]
    assert len(rerun) == 1 and rerun[0].user_attrs["job_num"] == 2 and rerun[0].params == dead.params
    nums = [t.user_attrs["job_num"] for t in counted]
    assert len(set(nums)) == 5  # no job directory shared by two counted trials
    assert job_dirs(tmp_path) == sorted(nums)
    assert len({t.number for t in trials}) == len(trials) == 6


def test_two_workers_share_one_study(tmp_path):
    args = ["hydra.sweeper.n_trials=8", "x=interval(0,3)", "y=range(-2,4)"]
    workers = [start_app(tmp_path, *args), start_app(tmp_path, *args)]
    logs = [w.communicate(timeout=300)[0] for w in workers]
    assert [w.returncode for w in workers] == [0, 0], logs
    trials = load(tmp_path).get_trials()
    counted = [t for t in trials if t.state.name in ("COMPLETE", "PRUNED")]
    assert len(counted) == 8
    assert len({t.number for t in trials}) == len(trials)
    nums = [t.user_attrs["job_num"] for t in counted]
    assert len(set(nums)) == 8 and job_dirs(tmp_path) == sorted(nums)
    assert all(steps_run(tmp_path, n) == 8 for n in nums)  # no job dir written by two jobs


def test_nan_objective_fails_that_trial_and_the_study_goes_on(tmp_path):
    r = run_app(tmp_path, "hydra.sweeper.n_trials=3", "x=interval(0,3)", "nan_at_job=1",
                "hydra.sweeper.max_failure_rate=0.5")
    assert r.returncode == 0, r.stderr
    trials = load(tmp_path).get_trials()
    assert [t.state.name for t in trials] == ["COMPLETE", "FAIL", "COMPLETE", "COMPLETE"]
    assert "nan" in trials[1].system_attrs["failure"]
    assert "FAIL (the objective is nan" in r.stdout


def test_all_trials_failing_ends_with_the_first_failure(tmp_path):
    r = run_app(tmp_path, "hydra.sweeper.n_trials=2", "x=interval(0,3)", "fail_from_job=0",
                "hydra.sweeper.max_failure_rate=1.0")
    assert r.returncode != 0
    assert "the first: trial 0 (job 0): RuntimeError: job 0 broke on purpose" in r.stderr
    assert states(load(tmp_path)) == ["FAIL", "FAIL", "FAIL"]  # stops once more than 1.0 * 2 failed


@pytest.mark.parametrize("override,words", [
    ("x=range(3,3)", "'x': range(3, 3, step=1) is empty"),
    ("x=range(1,5,0)", "zero step"),
    ("xx=interval(0,1)", "'xx' is not a key of the composed config"),
    ("model.scal=interval(0,1)", "'model.scal' is not a key"),
    ("model=choice(quad,nope)", "names option(s) nope that the config group 'model' does not have"),
])
def test_bad_search_space_stops_before_the_first_trial(tmp_path, override, words):
    r = run_app(tmp_path, "hydra.sweeper.n_trials=3", override)
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    message = r.stderr.strip().split("\n\n")[0]
    assert words in message and "\n" not in message
    assert not (tmp_path / "sweep").exists()  # nothing launched


def test_group_choice_with_custom_search_space(tmp_path):
    r = run_app(tmp_path, "hydra.sweeper.n_trials=6", "model=choice(quad,cubic)", "x=interval(0,3)",
                "hydra.sweeper.custom_search_space=app_space.space", "hydra/sweeper/sampler=random",
                "hydra.sweeper.sampler.seed=0")
    assert r.returncode == 0, r.stderr
    trials = load(tmp_path).get_trials()
    assert {t.params["model"] for t in trials} == {"quad", "cubic"}
    for t in trials:
        extra = "model.depth" if t.params["model"] == "cubic" else "model.scale"
        assert set(t.params) == {"model", "x", extra}
        job_cfg = yaml.safe_load((tmp_path / "sweep" / str(t.user_attrs["job_num"]) / ".hydra" /
                                  "config.yaml").read_text())
        assert job_cfg["model"]["name"] == t.params["model"]
        assert job_cfg["model"][extra.split(".")[1]] == t.params[extra]


def test_lht_style_hparams_search_file_with_several_directions_gives_a_pareto_front(tmp_path):
    # conf/hparams_search/pareto.yaml: params in YAML, two directions, an LHT sampler block
    r = run_app(tmp_path, "+hparams_search=pareto", "hydra.sweeper.write_plots=false", "hydra.sweep.dir=sweep",
                base=[])
    assert r.returncode == 0, r.stderr
    study = load(tmp_path)
    trials = study.get_trials()
    assert len(trials) == 4 and all(set(t.params) == {"x", "y"} for t in trials)
    assert all(t.params["y"] in (-1, 0, 1) and 0 <= t.params["x"] <= 3 for t in trials)
    assert [d.name for d in study.directions] == ["MINIMIZE", "MAXIMIZE"]
    front = yaml.safe_load((tmp_path / "sweep" / "optimization_results.yaml").read_text())["solutions"]
    assert sorted(s["number"] for s in front) == sorted(t.number for t in study.best_trials)


@pytest.mark.parametrize("sampler", ["random", "tpe"])
def test_a_resumed_seeded_sweep_does_not_replay_earlier_trials(tmp_path, sampler):
    args = ["x=interval(0,3)", "y=interval(-2,2)", f"hydra/sweeper/sampler={sampler}", "hydra.sweeper.sampler.seed=1"]
    assert run_app(tmp_path, "hydra.sweeper.n_trials=3", *args).returncode == 0
    resumed = run_app(tmp_path, "hydra.sweeper.n_trials=5", *args)
    assert resumed.returncode == 0, resumed.stderr
    trials = load(tmp_path).get_trials()
    assert [t.number for t in trials] == [0, 1, 2, 3, 4]
    params = [(t.params["x"], t.params["y"]) for t in trials]
    assert len(set(params)) == 5, params


def test_a_resumed_seeded_sweep_draws_what_an_uninterrupted_one_draws(tmp_path):
    args = ["x=interval(0,3)", "y=interval(-2,2)", "hydra/sweeper/sampler=random", "hydra.sweeper.sampler.seed=4"]
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    assert run_app(tmp_path / "a", "hydra.sweeper.n_trials=4", *args).returncode == 0
    assert run_app(tmp_path / "b", "hydra.sweeper.n_trials=2", *args).returncode == 0
    assert run_app(tmp_path / "b", "hydra.sweeper.n_trials=4", *args).returncode == 0
    whole, resumed = ([t.params for t in load(tmp_path / d).get_trials()] for d in ("a", "b"))
    assert whole == resumed and len({tuple(p.values()) for p in whole}) == 4


def test_two_workers_with_the_same_seed_draw_different_params(tmp_path):
    args = ["hydra.sweeper.n_trials=6", "x=interval(0,3)", "y=interval(-2,2)", "hydra/sweeper/sampler=random",
            "hydra.sweeper.sampler.seed=1"]
    workers = [start_app(tmp_path, *args), start_app(tmp_path, *args)]
    logs = [w.communicate(timeout=300)[0] for w in workers]
    assert [w.returncode for w in workers] == [0, 0], logs
    trials = load(tmp_path).get_trials()
    params = [(t.params["x"], t.params["y"]) for t in trials]
    assert len(params) >= 6 and len(set(params)) == len(params), params


class _GrowingStudy:
    """A study that another worker adds a better COMPLETE trial to between any two reads of its trials."""

    def __init__(self, study):
        self._study = study

    def __getattr__(self, name):
        return getattr(self._study, name)

    def get_trials(self, *args, **kwargs):
        self._study.enqueue_trial({"x": 0.0})
        t = self._study.ask({"x": optuna.distributions.FloatDistribution(-10, 10)})
        self._study.tell(t, -float(t.number))
        return self._study.get_trials(*args, **kwargs)


def test_the_four_sweep_files_describe_one_snapshot_of_the_study(tmp_path):
    import csv
    from types import SimpleNamespace

    from hydra_plugins.optuna5_sweeper._impl import _SweepRun

    study = optuna.create_study(study_name="s")
    growing = _GrowingStudy(study)
    run = _SweepRun(SimpleNamespace(heartbeat_interval=30.0, max_failure_rate=0.25), growing, "mem", tmp_path,
                    ["minimize"], 10, None, None)
    run.write_outputs()
    listed = json.loads((tmp_path / "sweep.json").read_text())["trials"]
    rows = list(csv.DictReader((tmp_path / "trials.csv").open()))
    assert [int(r["number"]) for r in rows] == [t["number"] for t in listed]
    best = yaml.safe_load((tmp_path / "optimization_results.yaml").read_text())
    assert best["best_trial_number"] == max(t["number"] for t in listed)  # the best of the listed trials
    report = (tmp_path / "sweep_report.md").read_text()
    assert f"COMPLETE {len(listed)}." in report and f"trial {best['best_trial_number']}," in report


def test_trial_files_are_written_off_the_sweep_thread_newest_snapshot_first(tmp_path, monkeypatch):
    # the sweep's thread only renders a trial's files; a writer thread writes them (fsync'd), so the next trial
    # starts at once. A set submitted while another is still pending replaces it; close() writes what is pending.
    import threading

    from hydra_plugins.optuna5_sweeper import _outputs

    first_started, release = threading.Event(), threading.Event()
    written = []

    def write_files(sweep_dir, files):
        written.append((threading.current_thread().name, files["trials.csv"]))
        first_started.set()
        assert release.wait(30)

    monkeypatch.setattr(_outputs, "write_files", write_files)
    writer = _outputs.BackgroundWriter(tmp_path)
    writer.submit({"trials.csv": b"1"})
    assert first_started.wait(30)  # the writer is busy with snapshot 1 ...
    writer.submit({"trials.csv": b"2"})
    writer.submit({"trials.csv": b"3"})  # ... and 3 replaces 2 before its turn
    release.set()
    writer.close()
    assert written == [("optuna5-sweep-outputs", b"1"), ("optuna5-sweep-outputs", b"3")]
    assert threading.current_thread().name != "optuna5-sweep-outputs"
