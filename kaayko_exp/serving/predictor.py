"""Score weather rows with a trained run: the object behind predict.py, HTTP and the Python API.

``Predictor.load(run_dir)`` opens a run directory, refuses it unless its export
stage is done and its package versions are compatible, checks the sha256 of every
export artifact against the manifest BEFORE anything is deserialised, then loads
the FeatureSpec, the safety config and the model (XGBoost UBJ/JSON or skops; never
pickle). Features are rebuilt with :func:`kaayko_exp.features.spec.transform`, the
function the training pipeline used, so serving computes exactly what training did.

Outputs per row, the same on every path (DataFrame columns, dicts, JSON, files):
``model_score`` (the model, 0.5 grid, clipped 1-5), ``raw_score`` (unrounded model
output), ``paddle_score`` (THE score: the model score after the safety layer; equal to
``model_score`` when no rule applies or ``safety=off``), ``skill_level`` (of
``paddle_score``), ``adjustments`` (the safety rules applied: ``{"rule", "delta",
"reason"}``), ``warnings`` (list of texts: the safety layer's, then, for a row whose inputs lie
outside the training rows' support, one text starting ``outside the training data: ``, see
:mod:`kaayko_exp.data.support`), plus ``lake`` / ``datetime`` when the input has them. Input
policy: see :mod:`kaayko_exp.serving.inputs`.

Two paths give identical numbers (tested): :meth:`Predictor.predict` for frames
(vectorised) and :meth:`Predictor.predict_one` for one dict, which never touches
pandas so that one row costs little more than the model itself (for XGBoost it calls the
library's C entry point directly: :mod:`kaayko_exp.serving.one_row`). Batch files are read
column-restricted (:meth:`InputPlan.reads`): columns no feature, rule or derivation uses are
never read, so gaps in them do not matter.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from kaayko_exp.data import schema
from kaayko_exp.errors import PredictionInputError, RunDirError
from kaayko_exp.serving.inputs import InputPlan, validate_frame, validate_row
from kaayko_exp.serving.safety import SafetyLayer, format_adjustment

log = logging.getLogger(__name__)

SUPPORT_FILE = "model/support.json"  # the training rows' support, exported with the model (absent in older runs)
OUTPUT_COLUMNS = ("model_score", "raw_score", "paddle_score", "skill_level", "adjustments", "warnings")
_LEVELS = schema.SKILL_LEVELS  # Expert Only, Advanced, Intermediate, Beginner


def _major(version: Any) -> int | None:
    try:
        return int(str(version).split(".")[0])
    except (TypeError, ValueError):
        return None


def _libraries_of(model_name: str | None) -> tuple[str, ...]:
    """The libraries whose on-disk format a model of this kind depends on."""
    if model_name == "xgboost":
        return ("xgboost",)
    if model_name == "rule":
        return ()
    if model_name in (None, "ensemble"):
        return ("xgboost", "scikit-learn")
    return ("scikit-learn",)


def check_versions(path: Path, manifest: Mapping[str, Any]) -> None:
    """Refuse a run written by an incompatible major version of kaayko-exp or of its model library."""
    from kaayko_exp.runs.rundir import package_versions

    saved, now = manifest.get("package") or {}, package_versions()
    problems = []
    ours = saved.get("kaayko-exp", saved.get("kaayko_exp"))
    if _major(ours) is not None and _major(ours) != _major(now["kaayko-exp"]):
        problems.append(f"kaayko-exp {ours} (this is {now['kaayko-exp']})")
    model_name = ((manifest.get("config") or {}).get("choices") or {}).get("model")
    for lib in _libraries_of(model_name):
        then = saved.get(lib)
        if _major(then) is not None and _major(now.get(lib)) is not None and _major(then) != _major(now[lib]):
            problems.append(f"{lib} {then} (installed: {now[lib]})")
    if problems:
        raise RunDirError(
            f"{path} was written by {', '.join(problems)}: a different major version, whose saved "
            "formats are not guaranteed to load or to predict the same. Use the versions recorded in its "
            "manifest.json (package), or retrain the run with the installed versions."
        )


def _level(score: float) -> str:
    return _LEVELS[(score >= 2.5) + (score >= 3.5) + (score >= 4.5)]


class Predictor:
    """A verified, loaded run ready to score rows."""

    def __init__(self, *, model: Any, spec: Any, safety: SafetyLayer, run: Any = None,
                 report: Mapping[str, Any] | None = None, support: Any = None):
        from kaayko_exp.features.spec import transform

        self.model = model
        self.spec = spec
        self.safety = safety
        # the training rows' support (kaayko_exp.data.support.Support): rows outside it get a warning; None for a
        # run that predates it (no such warnings)
        self.support = support
        self.run = run
        self.report = dict(report or {})
        self._transform = transform
        self._booster = getattr(model, "booster", None)
        # One row gains nothing from threads, and OpenMP's fork/join costs milliseconds on a busy
        # machine: single rows use a one-thread copy of the booster (same trees, same numbers).
        self._booster_one = None
        self._one_row = None  # direct C call for one row (same numbers, less Python): see serving.one_row
        if self._booster is not None:
            from kaayko_exp.serving.one_row import one_row_scorer

            self._booster_one = self._booster.copy()
            self._booster_one.set_param({"nthread": 1})
            self._one_row = one_row_scorer(self._booster_one, len(spec.features))
        # Derived water temperature follows the run's training data: the synthetic generator floors it
        # at 0 °C, real Kaayko files (kaayko_csv, parquet) carry the collector's unfloored values.
        data = None if run is None else self._choice(run, "data")
        self.plan = InputPlan(list(spec.required_columns) + list(safety.columns),
                              water_floor_at_zero=data in (None, "synthetic"))
        # category levels of the training rows, to warn about values training never saw (scored as missing)
        # (fixed vocabularies are checked by the input policy, so only open ones can hold a new value)
        self._levels = tuple((f["source"], frozenset(f["levels"])) for f in spec.features
                             if f["kind"] == "categorical" and f["source"] not in schema.FIXED_VOCABULARIES)

    # ------------------------------------------------------------------ loading
    @classmethod
    def load(cls, run_dir: str | Path, safety: Any = None) -> "Predictor":
        """Open, verify and load the exported model of ``run_dir``.

        ``safety``: None uses the run's own ``model/safety.json``; a SafetyConfig /
        mapping (e.g. the ``off`` group) replaces it.
        """
        from kaayko_exp.runs.rundir import RunDir

        run = RunDir.open(run_dir)
        export = (run.manifest.get("stages") or {}).get("export") or {}
        if export.get("status") != "done":
            raise RunDirError(
                f"{run.path} has no exported model yet (export stage: {export.get('status', 'absent')}, run "
                f"status: {run.manifest.get('status')}). Finish the run with `python train.py resume={run.shown}` "
                "and predict from it afterwards."
            )
        check_versions(run.path, run.manifest)
        recorded = {a["path"] for a in export.get("artifacts", [])}
        for needed in ("model/feature_spec.json", "model/safety.json"):
            if needed not in recorded:
                raise RunDirError(
                    f"{run.path}: the manifest's export stage does not record {needed}, so the run cannot be "
                    "served safely. Re-export it with `python -m kaayko_exp.runs repair` and a resume, or retrain."
                )
        model_dir = run.path / "model"
        stray = sorted(p.relative_to(run.path).as_posix() for p in model_dir.rglob("*")
                       if p.is_file() and not p.name.startswith(".")
                       and p.relative_to(run.path).as_posix() not in recorded)
        if stray:
            raise RunDirError(
                f"{run.path}: {', '.join(stray)} in model/ is not recorded in the manifest, so it cannot be "
                "verified and will not be loaded. Remove it (it was not written by the run) and try again."
            )
        run.verify(["export"])  # sha256 of every export artifact, before anything is deserialised
        report = cls._verified_report(run)

        from kaayko_exp.features.spec import FeatureSpec
        from kaayko_exp.models import load_model

        spec = FeatureSpec.load(model_dir / "feature_spec.json")
        if safety is None:
            safety = json.loads((model_dir / "safety.json").read_text(encoding="utf-8"))
        layer = safety if isinstance(safety, SafetyLayer) else SafetyLayer(safety)
        model = load_model(model_dir, verified=True)  # run.verify above hashed every file
        support = None
        if SUPPORT_FILE in recorded:
            from kaayko_exp.data.support import Support

            support = Support.load(run.path / SUPPORT_FILE)
        else:
            log.info("run %s has no training-support record (it was trained before kaayko-exp kept one): rows "
                     "outside the training data get no warning", run.manifest.get("run_id"))
        log.info("loaded run %s (%s model, safety %s)", run.manifest.get("run_id"),
                 cls._choice(run, "model"), layer.name)
        return cls(model=model, spec=spec, safety=layer, run=run, report=report, support=support)

    @staticmethod
    def _choice(run: Any, group: str) -> Any:
        return ((run.manifest.get("config") or {}).get("choices") or {}).get(group)

    @staticmethod
    def _verified_report(run: Any) -> dict[str, Any]:
        arts = [a for a in (run.manifest["stages"].get("report") or {}).get("artifacts", [])
                if a["path"] == "report.json"]
        if not arts or run.manifest["stages"]["report"].get("status") != "done":
            return {}
        try:
            path = run.verify_file(arts[0])
            return json.loads(path.read_text(encoding="utf-8"))
        except (RunDirError, ValueError) as exc:
            log.warning("report.json not used: %s", exc)
            return {}

    # ------------------------------------------------------------------ metadata
    @property
    def run_id(self) -> str | None:
        return None if self.run is None else self.run.manifest.get("run_id")

    @property
    def model_name(self) -> str | None:
        return None if self.run is None else self._choice(self.run, "model")

    def feature_names(self) -> list[str]:
        from kaayko_exp.features.spec import feature_names

        return list(feature_names(self.spec))

    def info(self) -> dict[str, Any]:
        """What GET /model reports: run id, model, metrics, feature list, inputs, safety."""
        choices = {} if self.run is None else dict((self.run.manifest.get("config") or {}).get("choices") or {})
        test = self.report.get("test") if isinstance(self.report.get("test"), Mapping) else {}
        inputs = self.plan.describe()
        return {
            "run_id": self.run_id,
            "model": self.model_name,
            "choices": choices,
            "metrics": self.report.get("metrics") or test.get("metrics"),
            "metrics_after_safety": self.report.get("metrics_after_safety") or test.get("metrics_after_safety"),
            "features": self.feature_names(),
            "required_columns": inputs["required"],
            "optional_columns": inputs["optional"],
            "input_notes": inputs["notes"],
            "units": inputs["units"],
            "safety": {"name": self.safety.name, "enabled": self.safety.enabled},
            "training_support": None if self.support is None else self.support.describe(),
            "package": None if self.run is None else self.run.manifest.get("package"),
        }

    # ------------------------------------------------------------------ scoring
    def _raw(self, X: np.ndarray) -> np.ndarray:
        if self._booster is not None:
            booster = self._booster_one if X.shape[0] == 1 else self._booster
            return np.asarray(booster.inplace_predict(X), dtype=np.float64).reshape(-1)
        return np.asarray(self.model.predict(X), dtype=np.float64).reshape(-1)

    def predict(self, frame: Any, offset: int = 0) -> Any:
        """Score a DataFrame (or a list of dicts / a column mapping); one output row per input row.

        ``offset`` is the position of this batch in a larger input (for error messages).
        """
        import pandas as pd

        if not isinstance(frame, pd.DataFrame):
            frame = pd.DataFrame(list(frame) if not isinstance(frame, Mapping) else frame)
        clean = validate_frame(frame, self.plan, offset)
        self._warn_unseen(clean)
        return self._score(clean)

    def _warn_unseen(self, clean: Any) -> None:
        """Log how many rows hold a category level the training rows never had (they take the missing-value
        path, as in evaluation: see :mod:`kaayko_exp.features.spec`)."""
        from kaayko_exp.features.spec import unseen

        open_columns = [col for col, _ in self._levels if col in clean.columns]
        if not open_columns:
            return
        clean = clean[open_columns]
        levels, rows = unseen(self.spec, clean)
        if levels:
            what = ", ".join(f"{col}={value} ({n})" for col, values in levels.items() for value, n in values.items())
            log.warning("%d of %d rows have a category level not seen in training, scored as a missing value: %s",
                        rows, len(clean), what)

    def _score(self, clean: Any) -> Any:
        """Score a frame the input policy has already checked (and completed with derived columns)."""
        import pandas as pd

        n = len(clean)
        raw = self._raw(self._transform(self.spec, clean)) if n else np.zeros(0)
        res = self.safety.apply_arrays(clean, raw)
        out: dict[str, Any] = {c: clean[c].to_numpy() for c in schema.ID_COLUMNS if c in clean.columns}
        final = res.paddle_score
        levels = (final >= 2.5).astype(np.int8) + (final >= 3.5) + (final >= 4.5)
        out.update(model_score=res.model_score, raw_score=raw, paddle_score=final,
                   skill_level=pd.Categorical.from_codes(levels, categories=list(_LEVELS), ordered=True),
                   adjustments=res.adjustments, warnings=self._with_support(clean, res.warnings))
        return pd.DataFrame(out)

    def _with_support(self, clean: Any, warnings: np.ndarray) -> np.ndarray:
        """The safety layer's warning lists plus the support warning of each row outside the training data
        (those rows get lists of their own: the layer's lists are shared between rows)."""
        if self.support is None or not len(clean):
            return warnings
        rows, texts = self.support.warnings(clean)
        if len(rows):
            warnings = warnings.copy()
            for i, text in zip(rows.tolist(), texts):
                warnings[i] = [*warnings[i], text]
            log.warning("%d of %d rows lie outside the training data (each has a warning: %s...)",
                        len(rows), len(clean), texts[0])
        return warnings

    def predict_one(self, row: Mapping[str, Any]) -> dict[str, Any]:
        """Score one row given as a dict (no pandas on this path)."""
        clean = validate_row(row, self.plan)
        unseen = [f"{col}={clean[col]}" for col, levels in self._levels if col in clean and clean[col] not in levels]
        if unseen:
            log.warning("1 of 1 rows has a category level not seen in training, scored as a missing value: %s",
                        ", ".join(unseen))
        X = self._transform(self.spec, clean)  # scalars: the one-row fast path of transform
        raw = self._one_row.score(X) if self._one_row is not None else float(self._raw(X)[0])
        res = self.safety.apply_one(clean, raw)
        if self.support is not None:
            outside = self.support.row_warning(clean)
            if outside is not None:
                res.warnings.append(outside)
        out: dict[str, Any] = {c: clean[c] for c in schema.ID_COLUMNS if c in clean}
        out.update(model_score=res.model_score, raw_score=raw, paddle_score=res.paddle_score,
                   skill_level=_level(res.paddle_score), adjustments=res.adjustments, warnings=res.warnings)
        return out

    def predict_many(self, rows: Sequence[Any]) -> list[dict[str, Any]]:
        """Score a list of dicts (HTTP lists): each row validated as in :meth:`predict_one`, scored at once."""
        import pandas as pd

        clean = [validate_row(r, self.plan, index=i) for i, r in enumerate(rows)]
        if not clean:
            return []
        frame = pd.DataFrame(clean)
        self._warn_unseen(frame)
        result = self._score(frame)  # each row checked once, above
        records = result.astype({"skill_level": object}).to_dict(orient="records")
        for row, r in zip(clean, records):
            for k in ("model_score", "raw_score", "paddle_score"):
                r[k] = float(r[k])
            # the frame shares list objects between rows: each record gets its own
            r["adjustments"] = [dict(a) for a in r["adjustments"]]
            r["warnings"] = list(r["warnings"])
            for k in schema.ID_COLUMNS:  # only where that row had it (no NaN fillers)
                if k in row:
                    r[k] = row[k]
                else:
                    r.pop(k, None)
        return records


def advice(result: Mapping[str, Any]) -> str:
    """Human-readable advice for one scored row (a :meth:`Predictor.predict_one` result)::

        Paddle score 3.0 / 5 (Advanced)
          model score 3.5; safety adjustments: gusts −0.5 (gust 45 km/h > 40 km/h)
    """
    adjustments = result.get("adjustments") or []
    lines = [f"Paddle score {result['paddle_score']:.1f} / 5 ({result['skill_level']})",
             f"  model score {result['model_score']:.1f}; "
             + ("safety adjustments: " + ", ".join(format_adjustment(a) for a in adjustments) if adjustments
                else "no safety adjustments")]
    tips = {
        "Beginner": "Good conditions: suitable for beginners.",
        "Intermediate": "Fair conditions: some paddling experience recommended.",
        "Advanced": "Challenging conditions: for confident, experienced paddlers.",
        "Expert Only": "Poor or hazardous conditions: experts only, or stay ashore.",
    }
    lines.append("  " + tips[result["skill_level"]])
    for w in result.get("warnings") or []:
        lines.append(f"  WARNING: {w}")
    return "\n".join(lines)


# ---------------------------------------------------------------------- batch files
def _adjustment_type() -> Any:
    import pyarrow as pa

    return pa.list_(pa.struct([("rule", pa.string()), ("delta", pa.float64()), ("reason", pa.string())]))


def _arrow_table(result: Any) -> Any:
    """One scored batch as an Arrow table with a stable schema (categoricals decoded to strings)."""
    import pandas as pd
    import pyarrow as pa

    arrays, names = [], []
    for col in result.columns:
        s = result[col]
        if col == "warnings":
            arr = pa.array(s.tolist(), type=pa.list_(pa.string()))
        elif col == "adjustments":
            arr = pa.array(s.tolist(), type=_adjustment_type())
        elif isinstance(s.dtype, pd.CategoricalDtype):
            arr = pa.array(s.astype(object).to_numpy(), type=pa.string())
        elif col == "datetime" and not pd.api.types.is_datetime64_any_dtype(s.dtype):
            arr = pa.array(s.astype(object).to_numpy(), type=pa.string())
        else:
            arr = pa.Array.from_pandas(s)
        arrays.append(arr)
        names.append(col)
    return pa.Table.from_arrays(arrays, names=names)


def _count_rows(path: Path) -> int | None:
    """Row count of a parquet input from its footer (no data read); None for CSV."""
    try:
        import pyarrow.parquet as pq

        if path.is_file() and path.suffix.lower() == ".parquet":
            return pq.ParquetFile(path).metadata.num_rows
    except Exception:  # progress only: an unreadable file fails properly in the reader
        return None
    return None


def predict_file(predictor: Predictor, input_path: str | Path, output_path: str | Path,
                 batch_size: int = 200_000) -> int:
    """Score a parquet / CSV file or a directory of Kaayko CSVs into ``output_path``, streaming.

    Batches of ``batch_size`` rows are read, scored and appended to a temporary file
    that replaces ``output_path`` only when every row is scored (atomic). Parquet output
    keeps ``warnings`` as a list of strings and ``adjustments`` as a list of
    ``{rule, delta, reason}`` structs; CSV output joins each with `` | `` (adjustments
    written as in the text CLI: ``gusts −0.5 (gust 45 km/h > 40 km/h)``).
    Returns the number of rows written.
    """
    import sys
    import time

    from kaayko_exp.atomic import atomic_path
    from kaayko_exp.data import iter_table_batches
    from kaayko_exp.errors import ConfigError

    src, dst = Path(input_path), Path(output_path)
    kind = dst.suffix.lower()
    if kind not in (".parquet", ".csv"):
        raise ConfigError(f"output={dst} must end in .parquet or .csv.")
    if batch_size < 1:
        raise ConfigError(f"batch_size={batch_size} must be at least 1.")
    if not src.exists() and not any(ch in str(src) for ch in "*?["):
        raise PredictionInputError(f"input={src} does not exist. Pass a .parquet or .csv file or a directory of "
                                   "Kaayko CSVs.")
    if dst.exists() and src.exists() and dst.resolve() == src.resolve():
        raise ConfigError(f"output={dst} is the input file; choose another output path.")
    total = _count_rows(src)
    bar = None
    if sys.stderr.isatty():
        try:
            from tqdm import tqdm

            bar = tqdm(total=total, unit="rows", unit_scale=True, desc="scoring", file=sys.stderr)
        except ImportError:
            bar = None
    done, t0 = 0, time.perf_counter()
    with atomic_path(dst) as tmp, open(tmp, "wb") as fh:
        writer = None
        schema_ = None
        try:
            for batch in iter_table_batches(src, batch_size, columns=predictor.plan.reads(), key="input"):
                result = predictor.predict(batch, offset=done)
                if kind == ".parquet":
                    import pyarrow.parquet as pq

                    table = _arrow_table(result)
                    if writer is None:
                        schema_ = table.schema
                        writer = pq.ParquetWriter(fh, schema_, compression="zstd")
                    elif table.schema != schema_:
                        table = table.cast(schema_)
                    writer.write_table(table)
                else:
                    out = result.copy()
                    out["adjustments"] = [" | ".join(map(format_adjustment, a)) for a in out["adjustments"]]
                    out["warnings"] = [" | ".join(w) for w in out["warnings"]]
                    out.to_csv(fh, header=done == 0, index=False, lineterminator="\n")
                done += len(result)
                rate = done / max(time.perf_counter() - t0, 1e-9)
                if bar is not None:
                    bar.update(len(result))
                log.info("scored %s%s rows (%.0f rows/s)", f"{done:,}",
                         f" / {total:,} ({100 * done / total:.0f}%)" if total else "", rate)
        finally:
            if writer is not None:  # while fh is open; on error atomic_path then drops the file
                writer.close()
            if bar is not None:
                bar.close()
    log.info("wrote %s predictions to %s in %.1f s", f"{done:,}", dst, time.perf_counter() - t0)
    return done

