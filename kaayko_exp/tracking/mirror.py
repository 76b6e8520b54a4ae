"""What a run directory shows in MLflow, read from the directory itself (the source of truth).

Each function is one idempotent section of the mirror: a live run calls them as its stages finish
(:mod:`kaayko_exp.tracking.run_tracker`), ``sync-tracker`` calls all of them later
(:mod:`kaayko_exp.tracking.sync`), and neither uploads twice what MLflow already holds.
"""

from __future__ import annotations

import json
import logging
import tempfile
from pathlib import Path
from typing import Any, Iterable, Optional

from kaayko_exp import atomic
from kaayko_exp.tracking import client as mc

log = logging.getLogger(__name__)

#: the validation scores per round, kept beside the manifest so a sync can upload them: {key: {step: value}}
STEPS_FILE = Path("tracking") / "steps.json"
#: the manifest's record of the mirror
RECORD = "tracking"
#: the run's status -> the MLflow run status
MLFLOW_STATUS = {"completed": "FINISHED", "pruned": "KILLED", "interrupted": "KILLED", "failed": "FAILED"}
#: the run's status -> the Optuna trial state a sweep's child run is tagged with
TRIAL_STATE = {"completed": "COMPLETE", "pruned": "PRUNED", "interrupted": "FAIL", "failed": "FAIL"}
REPORT_FILES = ("report.md", "report.json")


def step_metric(key: str) -> str:
    """The MLflow name of fit ``key``'s validation score: ``fit/val_rmse``, ``cv/fold0/val_rmse``."""
    return f"{key}/val_rmse"


def load_steps(run_path: Path) -> dict[str, dict[int, float]]:
    try:
        raw = json.loads((run_path / STEPS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {str(k): {int(s): float(v) for s, v in steps.items()} for k, steps in raw.items()}


def save_steps(run_path: Path, steps: dict[str, dict[int, float]]) -> None:
    if steps:
        atomic.write_json(run_path / STEPS_FILE, {k: {str(s): v for s, v in sorted(d.items())} for k, d in steps.items()})


def params_of(config: dict[str, Any]) -> dict[str, str]:
    """The resolved config as flattened params (``model.params.max_depth``), without Hydra's node."""
    return mc.flatten({k: v for k, v in config.items() if k != "hydra"})


def saved_config(run_path: Path) -> dict[str, Any]:
    from omegaconf import OmegaConf

    from kaayko_exp.runs.rundir import SAVED_CONFIG

    return OmegaConf.to_container(OmegaConf.load(run_path / SAVED_CONFIG), resolve=True)  # type: ignore[return-value]


def run_tags(run_path: Path, manifest: dict[str, Any], extra: Optional[dict[str, Any]] = None) -> dict[str, Any]:
    """Run dir, config hash, data version, package versions, git commit (where there is one)."""
    data = manifest.get("data") or {}
    tags: dict[str, Any] = {
        f"{mc.TAG_PREFIX}run_dir": str(run_path),
        f"{mc.TAG_PREFIX}run_id": manifest.get("run_id"),
        f"{mc.TAG_PREFIX}config_hash": (manifest.get("config") or {}).get("hash"),
        f"{mc.TAG_PREFIX}data_source": data.get("source"),
        f"{mc.TAG_PREFIX}data_version": data.get("fingerprint") or data.get("frame_sha256"),
        f"{mc.TAG_PREFIX}data_rows": data.get("rows"),
        **{f"{mc.TAG_PREFIX}package.{k}": v for k, v in (manifest.get("package") or {}).items()},
        **{f"{mc.TAG_PREFIX}choice.{k}": v for k, v in ((manifest.get("config") or {}).get("choices") or {}).items()},
        "mlflow.source.name": "train.py",
        **(extra or {}),
    }
    commit = mc.git_commit(Path.cwd())
    if commit:
        tags["mlflow.source.git.commit"] = commit
    return tags


def final_metrics(run_path: Path) -> dict[str, float]:
    """report.json's metrics, named by set; the safety-adjusted ones apart (``test_after_safety/mae``)."""
    from kaayko_exp.evaluation.report import read_report

    r = read_report(run_path)
    blocks: list[tuple[str, dict[str, float]]] = [
        ("test", r.metrics), ("test_after_safety", r.metrics_after_safety), ("val", r.val_metrics),
        ("cv_mean", r.cv_mean), ("cv_std", r.cv_std), ("external", r.external_metrics or {}),
        *((f"baseline_{name}", block) for name, block in r.baselines.items()),
    ]
    ext = (r.raw.get("external") or {}).get("metrics_after_safety")
    if isinstance(ext, dict):
        blocks.append(("external_after_safety", {k: v for k, v in ext.items() if isinstance(v, (int, float))}))
    out = {f"{prefix}/{k}": float(v) for prefix, block in blocks for k, v in block.items()
           if isinstance(v, (int, float)) and v == v}
    objective = r.objective or {}
    names, values = objective.get("names"), objective.get("values")
    if isinstance(names, list) and isinstance(values, list):
        out.update({f"objective/{n}": float(v) for n, v in zip(names, values) if isinstance(v, (int, float))})
    elif isinstance(objective.get("value"), (int, float)):
        out["objective"] = float(objective["value"])
    return out


def log_steps(client: Any, run_id: str, steps: dict[str, dict[int, float]], floor: dict[str, int]) -> None:
    """Upload the steps above what MLflow holds (``floor``: key -> last step there, filled on first use)."""
    rows = []
    for key, per_step in steps.items():
        name = step_metric(key)
        if name not in floor:
            floor.update(mc.last_steps(client, run_id, [name]))
        top = floor[name]
        new = sorted(s for s in per_step if s > top)
        rows += [(name, per_step[s], s, mc.now_ms()) for s in new]
        if new:
            floor[name] = new[-1]
    mc.log_metrics(client, run_id, rows)


def log_final(client: Any, run_id: str, run_path: Path) -> None:
    have = mc.logged_metric_keys(client, run_id)
    ts = mc.now_ms()
    mc.log_metrics(client, run_id, [(k, v, 0, ts) for k, v in final_metrics(run_path).items() if k not in have])


def log_files(client: Any, run_id: str, run_path: Path) -> None:
    """report.md, report.json, manifest.json (always re-sent: it changes) and the plots."""
    from kaayko_exp.runs.rundir import MANIFEST

    mc.upload(client, run_id, [run_path / f for f in (*REPORT_FILES, MANIFEST)], replace=[MANIFEST])
    plots = run_path / "plots"
    if plots.is_dir():
        mc.upload(client, run_id, sorted(plots.glob("*.png")), "plots")


def log_model(client: Any, run_id: str, run_path: Path) -> bool:
    """The run's MLflow model export (what ``python -m kaayko_exp.export mlflow`` writes) as artifact
    ``model``; False when this kaayko-exp has no exporter."""
    if "model" in mc.artifact_names(client, run_id):
        return True
    try:
        from kaayko_exp.export.mlflow_model import save_model
    except ImportError:
        log.debug("no MLflow model exporter (kaayko_exp.export.mlflow_model); the model is not logged")
        return False
    with tempfile.TemporaryDirectory(prefix="kaayko-mlflow-model-") as tmp:
        dest = save_model(run_path, Path(tmp) / "model")
        client.log_artifacts(run_id, str(dest), "model")
    return True


def finish(client: Any, run_id: str, status: str, trial: bool) -> None:
    """Tag the run's own status (and a trial's Optuna state) and end the MLflow run accordingly."""
    tags = {f"{mc.TAG_PREFIX}status": status}
    if trial:
        tags["trial_state"] = TRIAL_STATE.get(status, "FAIL")
    mc.set_tags(client, run_id, tags)
    client.set_terminated(run_id, MLFLOW_STATUS.get(status, "KILLED"))


def sections(status: str, log_model_too: bool) -> Iterable[str]:
    """What a run in ``status`` mirrors at its end, in order."""
    if status == "completed":
        yield from ("final", "files", *(("model",) if log_model_too else ()))
    yield "status"


def log_section(client: Any, run_id: str, run_path: Path, section: str, status: str,
                parent_run_id: Optional[str] = None, trial: Optional[dict[str, Any]] = None) -> None:
    """Upload one of :func:`sections` of a finished run; ``status`` also updates a sweep trial's parent run."""
    if section == "final":
        log_final(client, run_id, run_path)
    elif section == "files":
        log_files(client, run_id, run_path)
    elif section == "model":
        log_model(client, run_id, run_path)
    elif section == "status":
        finish(client, run_id, status, trial=trial is not None)
        if trial is not None:
            from kaayko_exp.tracking.sweep import update_parent

            update_parent(client, parent_run_id, trial)
