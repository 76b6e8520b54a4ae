"""A sweep in MLflow: one parent run per study, each trial a child run (``mlflow.parentRunId``).

The trial's own process finds or creates the parent (:func:`parent_run`): by the sweep directory's
``tracking.json``, else by the tag ``kaayko.sweep_key`` (the study name and its storage), so trials from other
processes or machines of the same study nest under one parent, and a resumed sweep reuses it. As each trial
ends it tags itself with its state and updates the parent's best trial (:func:`update_parent`); the sweep
process has its tracker process end the parent (:class:`SweepTracker`, a Hydra callback). The sweeper plugin knows nothing of this.
Keep the module light: Hydra instantiates its callback on every start.
"""

from __future__ import annotations

import hashlib
import logging
import re
from pathlib import Path
from typing import Any, Optional, Sequence

from hydra.experimental.callback import Callback

log = logging.getLogger("kaayko_exp.tracking")

SWEEP_FILE = "tracking.json"
KEY_TAG = "kaayko.sweep_key"


def _hide_password(url: str) -> str:
    return re.sub(r"://([^:/@]+):[^@]*@", r"://\1:***@", url)


def _describe(sweeper: Any, sweep_dir: Path, study_name: str) -> dict[str, Any]:
    from omegaconf import OmegaConf

    def target(name: str) -> Optional[str]:
        node = sweeper.get(name) if sweeper is not None else None
        value = OmegaConf.select(node, "_target_", default=None) if OmegaConf.is_config(node) else node
        return None if value is None else str(value).rsplit(".", 1)[-1]

    storage = sweeper.get("storage") if sweeper is not None else None
    storage = _hide_password(str(storage)) if storage else f"journal:{sweep_dir / 'optuna.journal'}"
    direction = sweeper.get("direction") if sweeper is not None else None
    if OmegaConf.is_config(direction):
        direction = list(direction)
    return {"study_name": study_name, "storage": storage, "sampler": target("sampler"), "pruner": target("pruner"),
            "direction": direction, "n_trials": sweeper.get("n_trials") if sweeper is not None else None,
            "sweep_dir": str(sweep_dir)}


def sweep_context(trial: Optional[Any] = None, directions: Sequence[str] = ()) -> Optional[dict[str, Any]]:
    """This job's sweep (study, sampler, pruner, trial number, sweep directory), or None outside a multirun."""
    try:
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode

        if not HydraConfig.initialized():
            return None
        hc = HydraConfig.get()
    except ValueError:
        return None
    if hc.mode != RunMode.MULTIRUN:
        return None
    sweeper = hc.get("sweeper")
    sweep_dir = Path(str(hc.sweep.dir)).expanduser().resolve()
    study = getattr(trial, "study", None)
    name = getattr(study, "study_name", None) or (sweeper.get("study_name") if sweeper is not None else None) \
        or str(hc.job.name)
    ctx = _describe(sweeper, sweep_dir, str(name))
    if ctx["direction"] is None and directions:  # null in the sweeper config: the objective's own
        ctx["direction"] = directions[0] if len(directions) == 1 else list(directions)
    number = getattr(trial, "number", None)
    ctx["number"] = int(number) if number is not None else int(hc.job.num)
    ctx["params"] = dict(getattr(trial, "params", {}) or {})
    ctx["key"] = hashlib.sha256(f"{ctx['storage']}\n{ctx['study_name']}".encode()).hexdigest()[:32]
    return ctx


def _parent_tags(ctx: dict[str, Any]) -> dict[str, Any]:
    return {KEY_TAG: ctx["key"], "kaayko.role": "sweep", "study_name": ctx["study_name"], "sampler": ctx["sampler"],
            "pruner": ctx["pruner"], "direction": ctx["direction"], "storage": ctx["storage"],
            "kaayko.sweep_dir": ctx["sweep_dir"]}


def _find_parent(client: Any, experiment: str, ctx: dict[str, Any]) -> Optional[str]:
    import json

    try:
        saved = json.loads((Path(ctx["sweep_dir"]) / SWEEP_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        saved = {}
    if saved.get("key") == ctx["key"] and saved.get("experiment_id") == experiment and saved.get("parent_run_id"):
        return str(saved["parent_run_id"])
    found = client.search_runs([experiment], filter_string=f"tags.`{KEY_TAG}` = '{ctx['key']}'", max_results=1,
                               order_by=["attributes.start_time ASC"])
    return found[0].info.run_id if found else None


def parent_run(client: Any, experiment: str, uri: str, ctx: dict[str, Any]) -> str:
    """The sweep's parent run id: found (sweep dir's record, else the study's tag) or created, under a file lock
    in the sweep directory so parallel trials of one sweep create one parent."""
    import fcntl

    from kaayko_exp import atomic
    from kaayko_exp.tracking import client as mc

    sweep_dir = Path(ctx["sweep_dir"])
    sweep_dir.mkdir(parents=True, exist_ok=True)
    with open(sweep_dir / ".tracking.lock", "a+") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        parent = _find_parent(client, experiment, ctx)
        if parent is None:
            name = f"sweep {ctx['study_name']} ({sweep_dir.name})"
            parent = client.create_run(experiment, tags={"mlflow.runName": name}, run_name=name).info.run_id
            mc.log_params(client, parent, {k: str(v) for k, v in _parent_tags(ctx).items()
                                           if k in ("study_name", "sampler", "pruner", "direction", "storage")}
                          | {"n_trials": str(ctx["n_trials"])})
        else:
            client.update_run(parent, status="RUNNING")
        mc.set_tags(client, parent, _parent_tags(ctx))
        atomic.write_json(sweep_dir / SWEEP_FILE, {"tracking_uri": uri, "experiment_id": experiment,
                                                   "parent_run_id": parent, "key": ctx["key"]})
    return parent


def child_tags(ctx: dict[str, Any]) -> dict[str, Any]:
    return {"trial_number": ctx["number"], "trial_state": "RUNNING", "study_name": ctx["study_name"],
            **{f"trial.params.{k}": v for k, v in ctx["params"].items()}}


def update_parent(client: Any, parent: Optional[str], ctx: dict[str, Any]) -> None:
    """The parent's counts of finished trials and its best trial (tags ``best_trial``, ``best_value``,
    ``best.<param>``), from its children's states and objective values."""
    if not parent:
        return
    from kaayko_exp.tracking import client as mc

    experiment = client.get_run(parent).info.experiment_id
    children = client.search_runs([experiment], filter_string=f"tags.mlflow.parentRunId = '{parent}'",
                                  max_results=5000)
    states: dict[str, int] = {}
    for child in children:
        state = child.data.tags.get("trial_state", "RUNNING")
        states[state] = states.get(state, 0) + 1
    tags: dict[str, Any] = {f"trials_{s.lower()}": n for s, n in states.items()}
    done = [c for c in children if c.data.tags.get("trial_state") == "COMPLETE" and "objective" in c.data.metrics]
    if done and isinstance(ctx.get("direction"), (str, type(None))):
        sign = -1.0 if str(ctx.get("direction") or "minimize") == "maximize" else 1.0
        best = min(done, key=lambda c: sign * c.data.metrics["objective"])
        tags.update({"best_trial": best.data.tags.get("trial_number"), "best_value": best.data.metrics["objective"],
                     "best_run_dir": best.data.tags.get("kaayko.run_dir")})
        tags.update({f"best.{k[len('trial.params.'):]}": v for k, v in best.data.tags.items()
                     if k.startswith("trial.params.")})
    mc.set_tags(client, parent, tags)


class SweepTracker(Callback):
    """With ``logger=mlflow``: ``on_multirun_start`` starts the tracker process (its imports overlap the sweep's
    start); ``on_multirun_end`` queues the parent run's final best trial and end in it, after the trials'
    uploads. The sweep process itself never imports MLflow and does not wait for the tracker."""

    def on_multirun_start(self, config: Any, **kwargs: Any) -> None:
        from kaayko_exp.tracking import prestart

        prestart(config)

    def on_multirun_end(self, config: Any, **kwargs: Any) -> None:
        from omegaconf import OmegaConf

        from kaayko_exp.tracking.settings import logger_on

        if not logger_on(config):
            return
        sweep_dir = Path(str(OmegaConf.select(config, "hydra.sweep.dir"))).expanduser().resolve()
        ctx = _describe(OmegaConf.select(config, "hydra.sweeper"), sweep_dir, "")
        uri = str(OmegaConf.select(config, "logger.tracking_uri"))
        spec = {"uri": uri, "ctx": ctx, "sweep_dir": str(sweep_dir),
                "timeout": OmegaConf.select(config, "logger.timeout_s", default=60)}
        try:
            from kaayko_exp.tracking.run_tracker import locked_handover, worker

            worker().send(("sweep_end", 0, spec), locked_handover(sweep_dir))
        except Exception as exc:
            log.warning("MLflow logger (%s) could not end the sweep's parent run: %s: %s; upload later with: "
                        "python -m kaayko_exp.runs sync-tracker %s", uri, type(exc).__name__,
                        (str(exc).splitlines() or [""])[0][:200], sweep_dir)
