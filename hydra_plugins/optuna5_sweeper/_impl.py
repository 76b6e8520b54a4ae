"""The sweep loop: ask a trial, launch it as one Hydra job, tell its result; n_jobs slots, no batches."""

from __future__ import annotations

import importlib
import logging
import math
import os
import re
import signal
import sys
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence

import optuna
from omegaconf import DictConfig, OmegaConf
from optuna.trial import TrialState

from hydra_plugins.optuna5_sweeper import _logs, _outputs, _study
from hydra_plugins.optuna5_sweeper._launch import release_memory, settle_memory
from hydra_plugins.optuna5_sweeper._liveness import EndsWithSweep, Heartbeat, is_dead
from hydra_plugins.optuna5_sweeper._signals import StopOnSignal, exit_code, request_stop, signal_name
from hydra_plugins.optuna5_sweeper._storage import StorageUnavailableError
from hydra_plugins.optuna5_sweeper._space import SearchSpace, build_space, grid_of
from hydra_plugins.optuna5_sweeper.errors import (
    SearchSpaceError,
    SweepConfigError,
    SweepFailedError,
)
from hydra_plugins.optuna5_sweeper.trial import JOB_NUM_ATTR

log = logging.getLogger(__name__)

REQUEUED_FROM_ATTR = "requeued_from"
FAILURE_ATTR = "failure"
_MISSING = object()
_PLAIN = re.compile(r"^[A-Za-z0-9_./:\-+]+$")


def format_value(value: Any) -> str:
    """A sampled value as Hydra override text."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, str) and not _PLAIN.match(value):
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    return str(value)


def is_pruned(exc: Any) -> bool:
    return isinstance(exc, optuna.TrialPruned) or type(exc).__name__ == "TrialPruned"


def objective_values(value: Any, n: int) -> List[float]:
    """The task's return value as ``n`` finite floats; ValueError says what is wrong."""
    items = list(value) if n > 1 and isinstance(value, (list, tuple)) else [value]
    if len(items) != n:
        raise ValueError(f"the task returned {value!r}; {n} directions need a list of {n} numbers")
    out = []
    for v in items:
        try:
            f = float(v)
        except (TypeError, ValueError):
            raise ValueError(f"the task returned {value!r}, not a number the sweeper can optimise") from None
        if not math.isfinite(f):
            raise ValueError(f"the objective is {f} (not finite)")
        out.append(f)
    return out


def _is_basic(launcher: Any) -> bool:
    """Whether ``launcher`` is Hydra's basic launcher (jobs one at a time in this process)."""
    from hydra._internal.core_plugins.basic_launcher import BasicLauncher

    return isinstance(launcher, BasicLauncher)


class _Running:
    def __init__(self, trial: Any, job_num: int, overrides: List[str]) -> None:
        self.trial = trial
        self.job_num = job_num
        self.overrides = overrides
        self.started = time.monotonic()


class OptunaSweeperImpl:
    def __init__(self, sampler: Any, direction: Any, storage: Any, study_name: Optional[str], n_trials: int,
                 n_jobs: int, max_failure_rate: float, pruner: Any, params: Optional[DictConfig],
                 custom_search_space: Optional[str], heartbeat_interval: float = 30.0,
                 write_plots: bool = True, storage_retry_s: float = 60.0) -> None:
        self.sampler_cfg = sampler
        self.direction = direction
        self.storage_cfg = storage
        self.study_name_cfg = study_name
        self.n_trials = n_trials
        self.n_jobs = n_jobs
        self.max_failure_rate = max_failure_rate
        self.pruner_cfg = pruner
        self.params = OmegaConf.to_container(params, resolve=True) if OmegaConf.is_config(params) else (params or {})
        self.custom_search_space = custom_search_space
        self.heartbeat_interval = float(heartbeat_interval)
        self.write_plots = write_plots
        self.storage_retry_s = float(storage_retry_s)
        self.config: Optional[DictConfig] = None
        self.launcher: Any = None
        self.hydra_context: Any = None

    # ---- Hydra plumbing

    def setup(self, *, hydra_context: Any, task_function: Any, config: DictConfig) -> None:
        from hydra.core.plugins import Plugins

        from hydra_plugins.optuna5_sweeper._compose import wrap

        self.config = config
        self.hydra_context = hydra_context = wrap(hydra_context)  # jobs' configs composed once, then patched
        self.launcher = Plugins.instance().instantiate_launcher(  # jobs in other processes end with the sweep
            hydra_context=hydra_context, task_function=EndsWithSweep(task_function, os.getpid()), config=config)
        if _is_basic(self.launcher):  # jobs in this process: the same steps, less copying (_launch.py)
            from hydra_plugins.optuna5_sweeper._launch import InProcessLauncher

            self.launcher = InProcessLauncher(self.launcher)

    def slots(self) -> int:
        from hydra_plugins.optuna5_sweeper._launch import InProcessLauncher

        if isinstance(self.launcher, InProcessLauncher):
            if self.n_jobs > 1:
                log.info("n_jobs=%d but hydra/launcher=basic runs jobs in this process: one trial at a time "
                         "(use hydra/launcher=joblib, or several worker processes on one storage, for parallel "
                         "trials)", self.n_jobs)
            return 1
        return self.n_jobs

    # ---- checks before the first trial

    def _check_settings(self) -> None:
        if self.n_trials < 1:
            raise SweepConfigError(f"hydra.sweeper.n_trials={self.n_trials}: give at least 1 trial.")
        if self.n_jobs < 1:
            raise SweepConfigError(f"hydra.sweeper.n_jobs={self.n_jobs}: give at least 1.")
        if not 0.0 <= self.max_failure_rate <= 1.0:
            raise SweepConfigError(
                f"hydra.sweeper.max_failure_rate={self.max_failure_rate} must lie between 0.0 and 1.0.")
        if self.storage_retry_s < 0:
            raise SweepConfigError(f"hydra.sweeper.storage_retry_s={self.storage_retry_s} must be 0 or more.")
        if self.heartbeat_interval <= 0:
            raise SweepConfigError(f"hydra.sweeper.heartbeat_interval={self.heartbeat_interval} must be positive.")

    def check_space(self, space: SearchSpace) -> None:
        """Every swept key must name a config value or a config group (and its options must exist)."""
        assert self.config is not None
        choices = OmegaConf.select(self.config, "hydra.runtime.choices", default=None) or {}
        for key, dist in space.distributions.items():
            if key.startswith(("+", "~")) or "@" in key:
                continue
            if key in choices:
                self._check_group_options(key, dist)
                continue
            found = OmegaConf.select(self.config, key, default=_MISSING, throw_on_resolution_failure=False)
            if found is _MISSING:
                raise SearchSpaceError(
                    f"'{key}' is not a key of the composed config, so sweeping it would change nothing. "
                    f"Check its spelling (`--cfg job` prints the config), or write '+{key}=...' to add a new key."
                )

    def _check_group_options(self, group: str, dist: Any) -> None:
        from optuna.distributions import CategoricalDistribution

        if not isinstance(dist, CategoricalDistribution):
            raise SearchSpaceError(f"'{group}' is a config group; sweep it with choice(...) over its options.")
        options = self.hydra_context.config_loader.get_group_options(group)
        unknown = [str(c) for c in dist.choices if str(c) not in options]
        if unknown:
            raise SearchSpaceError(
                f"'{group}=choice(...)' names option(s) {', '.join(unknown)} that the config group '{group}' "
                f"does not have. Its options are: {', '.join(options)}."
            )

    def _custom_fn(self) -> Optional[Callable[[DictConfig, Any], Any]]:
        if not self.custom_search_space:
            return None
        module_name, _, fn_name = self.custom_search_space.rpartition(".")
        try:
            fn = getattr(importlib.import_module(module_name), fn_name)
        except (ImportError, AttributeError, ValueError) as exc:
            raise SweepConfigError(
                f"hydra.sweeper.custom_search_space={self.custom_search_space} cannot be imported ({exc}). "
                "Give 'package.module.function' of a function taking (cfg, trial)."
            ) from None
        if not callable(fn):
            raise SweepConfigError(f"hydra.sweeper.custom_search_space={self.custom_search_space} is not callable.")
        return fn

    # ---- the sweep

    def sweep(self, arguments: List[str]) -> Any:
        assert self.config is not None
        _logs.route_optuna_logs()
        _logs.quiet_joblib_launcher()
        self._check_settings()
        space = build_space(self.params, arguments)
        self.check_space(space)
        custom = self._custom_fn()
        directions = _study.directions_of(self.direction)
        grid = grid_of(space) if _study.is_grid(self.sampler_cfg) else None
        n_trials = self.n_trials
        if grid is not None:
            size = math.prod(len(v) for v in grid.values()) if grid else 1
            if size < n_trials:
                log.info("sampler=grid: the grid has %d points; n_trials lowered from %d", size, n_trials)
                n_trials = size
        sampler = _study.make_sampler(self.sampler_cfg, grid)
        pruner = _study.make_pruner(self.pruner_cfg)
        if len(directions) > 1 and not isinstance(pruner, optuna.pruners.NopPruner):
            log.warning("several directions: Optuna cannot prune multi-objective trials, the pruner is unused "
                        "(jobs get current_trial() None)")
        spec, study_name = _study.resolve(self.config.hydra, os.getcwd())
        sweep_dir = Path(os.getcwd()) / str(self.config.hydra.sweep.dir)  # (an absolute dir stays itself)
        if "://" in spec:  # a database that cannot be reached is refused before anything is written
            _study.open_storage(spec, self.storage_retry_s)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        _outputs.atomic_write(sweep_dir / "multirun.yaml", OmegaConf.to_yaml(self.config).encode())
        storage = _study.open_storage(spec, self.storage_retry_s)
        study = optuna.create_study(storage=storage, study_name=study_name, sampler=sampler, pruner=pruner,
                                    directions=directions, load_if_exists=True)
        have = [d.name.lower() for d in study.directions]
        if have != directions:
            raise SweepConfigError(
                f"study '{study_name}' in {spec} was created with directions {have}, not {directions}. "
                "Use the same direction, or another study_name / sweep directory."
            )
        run = _SweepRun(self, study, spec, sweep_dir, directions, n_trials, space, custom)
        run.grid_size = n_trials if grid is not None else None
        return run.go()


class _SweepRun:
    """One sweeper process working on a study until it holds n_trials COMPLETE+PRUNED trials."""

    def __init__(self, impl: OptunaSweeperImpl, study: Any, spec: str, sweep_dir: Path, directions: List[str],
                 n_trials: int, space: SearchSpace, custom: Optional[Callable[..., Any]]) -> None:
        self.impl = impl
        self.study = study
        self.spec = spec
        self.sweep_dir = sweep_dir
        self.directions = directions
        self.n_trials = n_trials
        self.space = space
        self.custom = custom
        self.failures: List[str] = []
        self.interrupted: List[_Running] = []
        self.grid_size: Optional[int] = None
        self.durations: List[float] = []
        self.heartbeat = Heartbeat(study._storage, impl.heartbeat_interval)
        self.writer: Optional[_outputs.BackgroundWriter] = None  # during the loop: writes each trial's files

    # -- counting

    def _counts(self) -> Dict[str, int]:
        counts: Dict[str, int] = {}
        for t in self.study.get_trials(deepcopy=False):
            counts[t.state.name] = counts.get(t.state.name, 0) + 1
        return counts

    def _done(self, counts: Dict[str, int]) -> int:
        return counts.get("COMPLETE", 0) + counts.get("PRUNED", 0)

    def _grid_done(self) -> bool:
        """Every grid point has had its trial (a failed point is not drawn again) and none is queued."""
        if self.grid_size is None:
            return False
        trials = self.study.get_trials(deepcopy=False)
        if any(t.state == TrialState.WAITING for t in trials):
            return False
        return len({t.system_attrs["grid_id"] for t in trials if "grid_id" in t.system_attrs}) >= self.grid_size

    def _budget_spent(self) -> bool:
        return len(self.failures) > self.impl.max_failure_rate * self.n_trials

    # -- crash recovery

    def recover_dead(self) -> None:
        for t in self.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            if not is_dead(t, self.impl.heartbeat_interval):
                continue
            storage = self.study._storage
            try:
                storage.set_trial_system_attr(t._trial_id, FAILURE_ATTR, "its worker process is gone")
                storage.set_trial_state_values(t._trial_id, TrialState.FAIL)
            except Exception:  # another worker got there first
                continue
            job_num = t.user_attrs.get(JOB_NUM_ATTR, t.number)
            if REQUEUED_FROM_ATTR in t.user_attrs:
                log.warning("trial %d (job %s) was left RUNNING by a dead worker: marked FAIL; it was already a "
                            "re-run, so it is not queued again", t.number, job_num)
                continue
            self.study.enqueue_trial(dict(t.params), user_attrs={JOB_NUM_ATTR: job_num, REQUEUED_FROM_ATTR: t.number})
            log.warning("trial %d (job %s) was left RUNNING by a dead worker: marked FAIL and its parameters "
                        "queued again, in the same job directory", t.number, job_num)

    def _wait_for_others(self, stop: StopOnSignal) -> bool:
        """With none of its own trials left, wait while other workers' trials of the study run: their outcome
        decides whether more trials are needed, and this worker's files then end with the study's final
        state. True when there were any."""
        waited = False
        while stop.requested() is None:
            self.recover_dead()
            others = self.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
            if not others:
                break
            if not waited:
                log.info("waiting for %d running trial(s) of other workers (%s)", len(others),
                         ", ".join(f"#{t.number}" for t in others))
                waited = True
            time.sleep(min(1.0, self.impl.heartbeat_interval))
        return waited

    # -- one trial

    def _ask(self) -> Optional[_Running]:
        trial = self.study.ask(fixed_distributions=dict(self.space.distributions))
        job_num = trial.user_attrs.get(JOB_NUM_ATTR)
        if job_num is None:
            job_num = trial.number
            trial.set_user_attr(JOB_NUM_ATTR, job_num)
        trial.set_user_attr(_outputs.RUN_AT_ATTR, _outputs.run_at(self.sweep_dir))
        self.heartbeat.add(trial._trial_id)
        if self._surplus(trial.number):  # another worker took the last slot at the same moment
            self.heartbeat.remove(trial._trial_id)
            self.study._storage.set_trial_system_attr(trial._trial_id, FAILURE_ATTR, "surplus: n_trials reached")
            self.study.tell(trial, state=TrialState.FAIL)
            return None
        if self.custom is not None:
            try:
                self.custom(self.impl.config, trial)
            except Exception:
                self.heartbeat.remove(trial._trial_id)
                self.study.tell(trial, state=TrialState.FAIL)
                raise
        overrides = list(self.space.fixed.values())
        overrides += [f"{k}={format_value(v)}" for k, v in trial.params.items()]
        return _Running(trial, int(job_num), overrides)

    def _surplus(self, number: int) -> bool:
        counted = [t.number for t in self.study.get_trials(
            deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING))]
        return sum(1 for n in counted if n < number) >= self.n_trials

    def _launch(self, r: _Running) -> Any:
        _logs.set_job(r.job_num)
        try:
            return self.impl.launcher.launch([r.overrides], initial_job_idx=r.job_num)[0]
        except BaseException as exc:  # the launcher itself broke (or the job called sys.exit)
            return exc
        finally:
            _logs.set_job(None)

    def _finish(self, r: _Running, ret: Any) -> None:
        from hydra.core.utils import JobStatus

        self.heartbeat.remove(r.trial._trial_id)
        duration = time.monotonic() - r.started
        values: Optional[List[float]] = None
        message = ""
        signum = StopOnSignal.requested()
        if signum is not None and _ended_by_stop(ret):
            self._interrupted(r, signum, duration)
            return
        if isinstance(ret, SystemExit):  # the job's own exit (e.g. a config error it reported): this trial only
            state, message = TrialState.FAIL, f"the job exited with status {ret.code}" + (
                f": {ret}" if str(ret) != str(ret.code) else "")
        elif isinstance(ret, BaseException):
            state, message = TrialState.FAIL, f"{type(ret).__name__}: {ret}"
        elif ret.status == JobStatus.FAILED:
            exc = ret._return_value
            if is_pruned(exc):
                state = TrialState.PRUNED
            else:
                state, message = TrialState.FAIL, f"{type(exc).__name__}: {exc}"
        else:
            try:
                values = objective_values(ret.return_value, len(self.directions))
                state = TrialState.COMPLETE
            except ValueError as exc:
                state, message = TrialState.FAIL, str(exc)
        if message:
            self.study._storage.set_trial_system_attr(r.trial._trial_id, FAILURE_ATTR, message[:2000])
        self.study.tell(r.trial, values=values, state=state, skip_if_finished=True)
        self.durations.append(duration)
        if state == TrialState.FAIL:
            self.failures.append(f"trial {r.trial.number} (job {r.job_num}): {message}")
        self._progress(r, state, values, message, duration)

    def _interrupted(self, r: _Running, signum: int, duration: float) -> None:
        """A job stopped by the sweep's stop request: FAIL (not a failure of its config) and queued again, so
        the next sweep in this directory continues it in the same job directory."""
        t = r.trial
        self.study._storage.set_trial_system_attr(t._trial_id, FAILURE_ATTR, f"interrupted by {signal_name(signum)}")
        self.study.tell(t, state=TrialState.FAIL, skip_if_finished=True)
        self.study.enqueue_trial(dict(t.params), user_attrs={JOB_NUM_ATTR: r.job_num, REQUEUED_FROM_ATTR: t.number})
        self.interrupted.append(r)
        log.warning("trial %d (job %d) interrupted by %s after %.1fs: marked FAIL and queued again", t.number,
                    r.job_num, signal_name(signum), duration)

    # -- reporting

    def _progress(self, r: _Running, state: Any, values: Optional[List[float]], message: str,
                  duration: float) -> None:
        trials = self.study.get_trials(deepcopy=False)  # one snapshot: the line and the files agree
        summary = self.write_outputs(trials, background=True)
        done = sum(1 for t in trials if t.state.name in ("COMPLETE", "PRUNED"))
        best = ""
        if summary and "best_value" in summary:
            best = f", best {summary['best_value']:.6g} (trial {summary['best_trial_number']})"
        elif summary:
            best = f", Pareto front of {len(summary['solutions'])}"
        remaining = max(self.n_trials - done, 0)
        mean = sum(self.durations) / len(self.durations)
        eta = remaining * mean / max(1, self._slots)
        what = {"COMPLETE": f"COMPLETE value {values[0]:.6g}" if values and len(values) == 1 else
                f"COMPLETE values {values}", "PRUNED": "PRUNED", "FAIL": f"FAIL ({message})"}[state.name]
        log.info("trial %d/%d: #%d (job %d) %s in %.1fs%s, ETA %s", done, self.n_trials, r.trial.number,
                 r.job_num, what, duration, best, _fmt_eta(eta) if remaining else "done")

    def write_outputs(self, trials: Optional[Sequence[Any]] = None, plots: Sequence[str] = (),
                      background: bool = False) -> Any:
        """The sweep files from one snapshot of the study (``trials``, or a fresh one); returns its summary.
        ``background``: rendered here, written by the loop's writer thread (when it runs)."""
        if trials is None:
            trials = self.study.get_trials(deepcopy=False)
        try:
            files, summary = _outputs.render_outputs(self.sweep_dir, self.spec, self.study.study_name,
                                                     self.directions, self.n_trials, trials, plots)
            if background and self.writer is not None:
                self.writer.submit(files)
            else:
                _outputs.write_files(self.sweep_dir, files)
            return summary
        except OSError as exc:
            log.warning("sweep outputs not written: %s", exc)
            return _outputs.summary_of(trials, self.study.study_name, self.directions, self.sweep_dir)

    # -- the loop

    def go(self) -> Any:
        self._slots = self.impl.slots()
        self.recover_dead()
        counts = self._counts()
        if self._done(counts):
            log.info("study '%s' (%s) resumed: %d of %d trials done", self.study.study_name, self.spec,
                     self._done(counts), self.n_trials)
        else:
            log.info("study '%s' in %s: %d trials, %d at a time", self.study.study_name, self.spec,
                     self.n_trials, self._slots)
        self.heartbeat.start()
        self.writer = _outputs.BackgroundWriter(self.sweep_dir)
        running: Dict[Future, _Running] = {}
        settle_memory()
        settled_after_first = False
        lost: Optional[StorageUnavailableError] = None
        try:
            with StopOnSignal() as stop, \
                    ThreadPoolExecutor(max_workers=self._slots, thread_name_prefix="optuna5-trial") as pool:
                try:
                    while True:
                        while stop.requested() is None and not self._budget_spent() and len(running) < self._slots:
                            self.recover_dead()
                            counts = self._counts()
                            if self._done(counts) + counts.get("RUNNING", 0) >= self.n_trials or self._grid_done():
                                break
                            r = self._ask()
                            if r is not None:
                                running[pool.submit(self._launch, r)] = r
                        if not running:
                            if stop.requested() is None and not self._budget_spent() and self._wait_for_others(stop):
                                continue  # their outcome decides whether more trials are needed
                            break
                        finished, _ = wait(list(running), return_when=FIRST_COMPLETED)
                        for fut in finished:
                            r = running.pop(fut)
                            self._finish(r, fut.result())
                        if not settled_after_first:
                            settle_memory()
                            settled_after_first = True
                except StorageUnavailableError as exc:
                    lost = exc
                    if running:
                        log.error("the study storage is unreachable: asking the %d running trial(s) to stop at "
                                  "their next step", len(running))
                        request_stop(signal.SIGTERM)
                        wait(list(running))
                signum = stop.requested()
        finally:
            release_memory()
            self.heartbeat.stop()
            self.writer.close()  # its last files are written before any below (or the exit) replaces them
            self.writer = None
        if lost is not None:
            raise lost
        if signum is not None:
            self.write_outputs()
            print(_stopped_line(signum, self.interrupted, self.sweep_dir), file=sys.stderr, flush=True)
            sys.exit(exit_code(signum))
        trials = self.study.get_trials(deepcopy=False)
        plots: List[str] = []
        if self.impl.write_plots and any(t.state == TrialState.COMPLETE for t in trials):
            plots = _outputs.write_plots(self.sweep_dir, self.study, self.directions)
        summary = self.write_outputs(trials, plots)
        counts = self._counts()
        if self._grid_done() and self._done(counts) < self.n_trials and not self._budget_spent():
            log.info("sampler=grid: every point had its trial; %d of %d gave a result, %d failed",
                     self._done(counts), self.n_trials, counts.get("FAIL", 0))
        if self._budget_spent() or (self.failures and not self._done(counts)):
            raise SweepFailedError(
                f"{len(self.failures)} trial(s) failed (max_failure_rate={self.impl.max_failure_rate} of "
                f"n_trials={self.n_trials} allows {int(self.impl.max_failure_rate * self.n_trials)}); the first: "
                f"{self.failures[0]}"
            )
        if summary is not None and "best_value" in summary:
            log.info("best value %s at trial %d (run dir %s on %s): %s", summary["best_value"],
                     summary["best_trial_number"], summary["best_run_dir"], summary["best_run_host"],
                     summary["best_params"])
        return summary


def _stopped_line(signum: int, interrupted: List[_Running], sweep_dir: Path) -> str:
    jobs = ", ".join(str(r.job_num) for r in interrupted)
    stopped = (f"{len(interrupted)} running trial(s) stopped at their next step and queued again (job dir "
               f"{jobs})") if interrupted else "no trial was running"
    return (f"sweep stopped by {signal_name(signum)}: {stopped}; run the same command with "
            f"hydra.sweep.dir={sweep_dir} to continue the study")


def _ended_by_stop(ret: Any) -> bool:
    """Whether a job's outcome, after a stop request, is its stop (anything but a result or a pruning)."""
    from hydra.core.utils import JobStatus

    if isinstance(ret, BaseException):
        return True
    return ret.status == JobStatus.FAILED and not is_pruned(ret._return_value)


def _fmt_eta(seconds: float) -> str:
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}h{m:02d}m{s:02d}s" if h else f"{m}m{s:02d}s"
