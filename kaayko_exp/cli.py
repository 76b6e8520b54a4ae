"""Entry-point plumbing shared by train.py and predict.py.

User mistakes (:class:`KaaykoError`, and Hydra's own composition errors such as
an unknown group option or a mistyped key, see :func:`kaayko_exp.errors.explain`)
end with one paragraph on stderr and exit status 2; bugs keep their traceback.
"""

from __future__ import annotations

import contextlib
import functools
import os
import sys
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, Optional, Tuple

from kaayko_exp.errors import EXIT_USER_ERROR, KaaykoError, report_user_error


_task_started = False
#: a task returned normally in this process: a plain run's, or a job of a multirun whose launcher runs its jobs
#: in this process (hydra/launcher=basic)
_finished_here = False


def _log_to_files(exc: KaaykoError) -> None:
    """Record a user error in the run's log file (the terminal gets it once, on stderr)."""
    import logging

    record = logging.LogRecord("kaayko_exp", logging.ERROR, __file__, 0, "%s: %s", (exc.kind, str(exc)), None)
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.FileHandler):
            handler.handle(record)


def _is_resume(cfg: Any) -> bool:
    from omegaconf import DictConfig, OmegaConf

    return isinstance(cfg, DictConfig) and bool(OmegaConf.select(cfg, "resume", default=None))


def _tidy_failed_start(cfg: Any) -> Optional[str]:
    """Remove what Hydra and a fresh run wrote before a user mistake stopped them (see training.failed_start)."""
    try:
        from hydra.core.hydra_config import HydraConfig

        hc = HydraConfig.get()
        if _is_resume(cfg):
            return None  # a resume's directory holds an existing run
        from kaayko_exp.training.failed_start import tidy

        return tidy(Path(hc.runtime.output_dir), hc.output_subdir)
    except (ValueError, OSError):  # no Hydra context (tests calling the task directly) / a file in use
        return None


class UserErrorExit(SystemExit):
    """Exit status 2 after a user error was reported; its text is the error, so a sweeper that catches the
    exit of one trial records why that trial failed (and goes on with the others)."""

    def __init__(self, exc: KaaykoError) -> None:
        super().__init__(EXIT_USER_ERROR)
        self.error = f"{exc.kind}: {exc}"

    def __str__(self) -> str:
        return self.error


def task(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a Hydra task function: KaaykoError -> one paragraph, exit 2.

    A fresh start that a user mistake stops before it produced anything leaves no run directory behind.
    Everything else propagates, in particular ``optuna.TrialPruned`` from a pruned sweep trial: the
    sweeper records that trial as PRUNED (the run directory already says ``pruned``).
    """

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        global _task_started
        _task_started = True
        _restore_full_error()
        try:
            value = fn(*args, **kwargs)
            _note_finished_here()
            return value
        except KaaykoError as exc:
            cfg = args[0] if args else kwargs.get("cfg")
            if not _is_resume(cfg):  # a refused resume writes nothing, not even to its run's log
                _log_to_files(exc)
            note = _tidy_failed_start(cfg)
            report_user_error(exc, note)
            raise UserErrorExit(exc) from None

    return wrapper


def _note_finished_here() -> None:
    global _finished_here
    try:
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode
        from omegaconf import OmegaConf

        hc = HydraConfig.get()
        in_process = str(OmegaConf.select(hc, "launcher._target_", default="")).endswith(".BasicLauncher")
        _finished_here = hc.mode == RunMode.RUN or in_process
    except ValueError:  # no Hydra context (tests calling the task directly)
        _finished_here = False


#: Modules whose presence keeps the interpreter's own shutdown (their clients, workers, threads and connection
#: pools expect it; sqlalchemy: a sweep on a PostgreSQL study).
_NEEDS_TEARDOWN = ("distributed", "mlflow", "coverage", "sqlalchemy")


def exit_without_teardown() -> None:
    """End the process (status 0) after a plain run, or a sweep whose jobs ran in this process, finished,
    skipping only the interpreter's teardown.

    Everything a normal exit does for others still happens, in the same order: live threads are waited for
    (none are: the function returns without exiting if one is), the ``atexit`` handlers run (log files are
    flushed and closed, temporary directories removed), stdout and stderr are flushed. What is skipped is
    the destruction of every module and object one by one, which after a training run (~2,000 modules:
    pandas, scikit-learn, SciPy, matplotlib, Hydra) takes 0.3-0.5 s of CPU and nothing in it is kept: every
    file a run writes is already closed and fsync'd (kaayko_exp.atomic), and a sweeper returns only after its
    own files are written. A sweep whose jobs ran elsewhere (joblib, Dask), a Dask or MLflow session, a
    PostgreSQL study, coverage measurement or a live child process or thread exits the ordinary way.
    """
    import threading

    if not _finished_here or any(name in sys.modules for name in _NEEDS_TEARDOWN):
        return
    if any(t.is_alive() and not t.daemon for t in threading.enumerate() if t is not threading.main_thread()):
        return
    mp = sys.modules.get("multiprocessing")
    if mp is not None and mp.active_children():
        return
    import atexit

    atexit._run_exitfuncs()  # what the interpreter runs at exit, before its teardown
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError, AttributeError):  # a closed or missing stream
            pass
    os._exit(0)


_FULL_ERROR = "HYDRA_FULL_ERROR"
_outer_full_error: Optional[str] = None  # the user's HYDRA_FULL_ERROR while run_entry_point holds it at "1"


def _restore_full_error() -> None:
    """Give HYDRA_FULL_ERROR back its own value (Hydra reports errors after the task started as it always does)."""
    global _outer_full_error
    if _outer_full_error is not None:
        if _outer_full_error == "":
            os.environ.pop(_FULL_ERROR, None)
        else:
            os.environ[_FULL_ERROR] = _outer_full_error
        _outer_full_error = None


@contextlib.contextmanager
def compose_once() -> Iterator[None]:
    """Compose a command's config once where Hydra composes it twice in a row.

    Hydra 1.3 starts every ``--multirun`` by composing the whole config to read ``hydra.mode``
    (``Hydra.get_mode``), drops it, and composes the same config again with the same overrides to run the
    sweep: every config file read and merged twice (a 20-trial sweep of 3-round trials at ``medium`` spent
    0.69 s outside its trials before, 0.60 s after). While this is active, ``ConfigLoaderImpl.load_configuration``
    keeps the first composition, which ``get_mode`` only reads, and hands that same config to the next request
    with the same loader, config name, overrides and mode; Hydra's check of the sweep overrides (skipped by
    ``get_mode``) still runs on it. Anything else is composed as before: a single run (composed for another
    mode), a failed first composition (``get_mode`` then says nothing and the second composition reports the
    error), and every request after the one it served.
    """
    from hydra._internal.config_loader_impl import ConfigLoaderImpl
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.types import RunMode

    original = ConfigLoaderImpl.load_configuration
    kept: Dict[Tuple[Any, ...], Any] = {}
    served = [False]

    def load_configuration(self: Any, config_name: Optional[str], overrides: Any, run_mode: Any,
                           from_shell: bool = True, validate_sweep_overrides: bool = True) -> Any:
        key = (id(self), config_name, tuple(overrides), run_mode, from_shell)
        cfg = kept.pop(key, None)
        if cfg is not None:
            if validate_sweep_overrides:
                parsed = OverridesParser.create().parse_overrides(overrides=list(overrides))
                self.validate_sweep_overrides_legal(overrides=parsed, run_mode=run_mode, from_shell=from_shell)
            return cfg
        cfg = original(self, config_name, overrides, run_mode, from_shell, validate_sweep_overrides)
        if not served[0] and run_mode == RunMode.MULTIRUN and not validate_sweep_overrides:
            served[0] = True  # get_mode's request: it reads hydra.mode and drops the config
            kept[key] = cfg
        return cfg

    ConfigLoaderImpl.load_configuration = load_configuration  # type: ignore[method-assign]
    try:
        yield
    finally:
        ConfigLoaderImpl.load_configuration = original  # type: ignore[method-assign]
        kept.clear()


def run_entry_point(main: Callable[[], Any]) -> None:
    """Call a ``@hydra.main`` function; Hydra's composition errors become one paragraph (see
    :func:`kaayko_exp.errors.explain`) and exit with status 2.

    Until the task starts Hydra raises its errors here instead of printing them
    (``HYDRA_FULL_ERROR=1``), unless the user set that variable to see them in full.
    """
    global _outer_full_error
    debugging = os.environ.get(_FULL_ERROR) == "1"
    if not debugging:
        _outer_full_error = os.environ.get(_FULL_ERROR, "")
        os.environ[_FULL_ERROR] = "1"
    try:
        with compose_once():
            main()
    except SystemExit as exc:
        if exc.code == 1 and not _task_started:
            sys.exit(EXIT_USER_ERROR)  # Hydra already printed what is wrong with the config
        raise
    except KaaykoError as exc:  # raised while preparing argv, or by a sweeper before any task ran
        report_user_error(exc)
        sys.exit(EXIT_USER_ERROR)
    except Exception as exc:
        if debugging or _task_started:
            raise
        from kaayko_exp.errors import report_config_error as report

        if not report(exc):
            raise
        sys.exit(EXIT_USER_ERROR)
    finally:
        _restore_full_error()


def resume_argv(argv: list[str]) -> list[str]:
    """Point Hydra's run directory at ``resume=<dir>`` so a resume logs into the same run.

    The target is checked first, before Hydra creates or writes anything: it must be a run
    directory (a folder inside a run, an empty folder or a date folder is refused). ``.hydra/``
    of the first start is never rewritten (``hydra.output_subdir=null``, also when the command
    names ``hydra.run.dir=<the same dir>``) and ``train.log`` is appended to. A sweep directory
    (it has Hydra's ``multirun.yaml`` and no run manifest) re-launches that multirun instead:
    see :func:`sweep_resume_argv`.
    """
    target = next((a.split("=", 1)[1] for a in argv[1:] if a.startswith("resume=")), None)
    if not target:
        return argv
    from kaayko_exp.errors import ConfigError, RunDirError
    from kaayko_exp.runs.rundir import MANIFEST, RunDir

    path = Path(target).expanduser()
    if path.is_dir() and (path / MULTIRUN_FILE).is_file() and not (path / MANIFEST).exists():
        return sweep_resume_argv(argv, path)
    if any(a in ("-m", "--multirun") for a in argv[1:]):
        return argv
    if not path.is_dir():
        raise RunDirError(
            f"resume={target}: no such run directory. Pass the path of a run under outputs/ "
            "(list them with `python -m kaayko_exp.runs list`)."
        )
    RunDir.open(path)  # reads the manifest only: a refusal here leaves everything as it was
    rest = []
    for arg in argv[1:]:
        value = arg.partition("=")[2]
        if _key(arg) == "hydra.run.dir" and Path(value).expanduser().resolve() == path.resolve():
            continue  # the run's own directory, as this function sets it
        if _key(arg) in ("hydra.run.dir", "hydra.output_subdir"):
            raise ConfigError(
                f"resume={target} continues the run in its own directory and never rewrites its saved config, "
                f"so {arg} cannot be given with it. Nothing was changed. Run `python train.py resume={target}` "
                "(a new directory needs a new run, without resume=)."
            )
        rest.append(arg)
    return [argv[0], *rest, f"hydra.run.dir={path.resolve()}", "hydra.output_subdir=null"]


MULTIRUN_FILE = "multirun.yaml"
# Saved hydra overrides that name the directories or the mode: replaced by the resumed sweep's own.
_NOT_REPLAYED = ("hydra.sweep.dir", "hydra.run.dir", "hydra.output_subdir", "hydra.mode")


def _key(override: str) -> str:
    return override.lstrip("+~").split("=", 1)[0]


def sweep_resume_argv(argv: list[str], path: Path) -> list[str]:
    """``resume=<sweep dir>`` -> the multirun that made it, in the same directory.

    The sweep's saved overrides (``multirun.yaml``: ``hydra.overrides.hydra`` — the sweeper choice,
    ``hydra.sweeper.n_trials`` … — and ``hydra.overrides.task``, the search space included) are replayed
    with ``hydra.sweep.dir=<sweep dir>``; overrides given now (e.g. ``hydra.sweeper.n_trials=40``) win
    over saved ones of the same key. The sweeper then continues the study stored there.
    """
    from omegaconf import OmegaConf

    from kaayko_exp.errors import RunDirError

    try:
        saved = OmegaConf.load(path / MULTIRUN_FILE)
        hydra_ov = [str(o) for o in OmegaConf.select(saved, "hydra.overrides.hydra", default=None) or []]
        task_ov = [str(o) for o in OmegaConf.select(saved, "hydra.overrides.task", default=None) or []]
    except Exception as exc:  # a damaged file: yaml / omegaconf errors
        raise RunDirError(
            f"resume={path}: {path / MULTIRUN_FILE} cannot be read ({exc}), so the sweep's overrides are unknown. "
            "Restore the file, or start the sweep again with its overrides and hydra.sweep.dir={path}."
        ) from None
    given = [a for a in argv[1:] if not a.startswith("resume=") and a not in ("-m", "--multirun")]
    given_keys = {_key(a) for a in given}
    replay = [o for o in [*hydra_ov, *task_ov]
              if _key(o) not in given_keys and _key(o) not in _NOT_REPLAYED and _key(o) != "resume"]
    return [argv[0], "--multirun", *replay, *given, f"hydra.sweep.dir={path.resolve()}"]
