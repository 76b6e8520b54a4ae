"""Feature sets: the single code path from Kaayko columns to a model matrix.

A feature set (``conf/features/*.yaml``) names raw numeric columns, categorical
columns, whether to add cyclic encodings and which derived features to compute.
:func:`build_spec` freezes it against a frame into a :class:`FeatureSpec` (ordered
features, kinds, category levels, the source columns needed); the spec is saved
with the model. :func:`transform` turns a DataFrame (training) or a dict of
column -> scalar / 1-element array (serving) into the same float32 matrix with
the same code: numeric sources are rounded to float32 first, derived features are
computed in float64 from those, categoricals become integer codes of the spec's
levels.

Category levels come from the TRAINING rows only (the pipeline passes the train
part of the split), joined to the fixed vocabularies of ``schema.FIXED_VOCABULARIES``
(wind_dir, season, season_intensity, hemisphere, climate_zone, regional_pattern).
The open vocabularies (condition, region, lake_type) therefore never hold a level
seen only in validation or test lakes.

Unseen categories: a value that is not among the spec's levels (a condition, region
or lake type the training rows never had) takes the same path as a missing value,
at evaluation and at serving alike: its code is NaN. XGBoost and histgb send NaN
down each split's learned missing-value branch; ridge and svm impute it to an
"unknown" slot whose one-hot columns are all zero. Nothing is refused. Callers
count such rows with :func:`unseen_levels` (the evaluate stage logs and records the
count for the test set; serving can warn with it).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Optional

import numpy as np
import pandas as pd

from kaayko_exp import atomic
from kaayko_exp.data import schema
from kaayko_exp.data.validate import local_datetimes
from kaayko_exp.errors import ConfigError, PredictionInputError, RunDirError

#: Bumped whenever transform() semantics change; a saved spec of another version is refused.
SPEC_VERSION = 1
SPEC_FORMAT = "kaayko-feature-spec"

HOUR = "hour"  # pseudo-source: hour of day parsed from the ``datetime`` column

# Fixed vocabularies joined to the levels seen in the data (so serving knows every valid value).
FIXED_LEVELS = schema.FIXED_VOCABULARIES


# ----------------------------------------------------------------------------- derived features
def _wind_chill(c: Mapping[str, np.ndarray]) -> np.ndarray:
    """Environment Canada wind chill (°C) where air ≤ 10 °C and wind > 4.8 km/h, else the air temperature."""
    t, v = c["temp_c"], c["wind_kph"]
    v16 = np.power(np.maximum(v, 0.0), 0.16)
    wc = 13.12 + 0.6215 * t - 11.37 * v16 + 0.3965 * t * v16
    return np.where((t <= 10.0) & (v > 4.8), wc, t)


def _heat_index(c: Mapping[str, np.ndarray]) -> np.ndarray:
    """NOAA (Rothfusz) heat index in °C where air ≥ 26.7 °C, else the air temperature."""
    t, rh = c["temp_c"], c["humidity"]
    f = t * 1.8 + 32.0
    hi = (-42.379 + 2.04901523 * f + 10.14333127 * rh - 0.22475541 * f * rh - 6.83783e-3 * f * f
          - 5.481717e-2 * rh * rh + 1.22874e-3 * f * f * rh + 8.5282e-4 * f * rh * rh
          - 1.99e-6 * f * f * rh * rh)
    return np.where(t >= 26.7, (hi - 32.0) / 1.8, t)


def _angle(values: np.ndarray, offset: float, period: float) -> np.ndarray:
    return (values - offset) * (2.0 * math.pi / period)


@dataclass(frozen=True)
class Derived:
    """A derived feature: its input columns and a vectorised float64 formula."""

    inputs: tuple[str, ...]
    formula: Callable[[Mapping[str, np.ndarray]], np.ndarray]
    doc: str


DERIVED: dict[str, Derived] = {
    "month_sin": Derived(("month",), lambda c: np.sin(_angle(c["month"], 1.0, 12.0)), "sin of month"),
    "month_cos": Derived(("month",), lambda c: np.cos(_angle(c["month"], 1.0, 12.0)), "cos of month"),
    "hour_sin": Derived((HOUR,), lambda c: np.sin(_angle(c[HOUR], 0.0, 24.0)), "sin of hour (from datetime)"),
    "hour_cos": Derived((HOUR,), lambda c: np.cos(_angle(c[HOUR], 0.0, 24.0)), "cos of hour (from datetime)"),
    "doy_sin": Derived(("day_of_year",), lambda c: np.sin(_angle(c["day_of_year"], 1.0, 365.25)), "sin of day of year"),
    "doy_cos": Derived(("day_of_year",), lambda c: np.cos(_angle(c["day_of_year"], 1.0, 365.25)), "cos of day of year"),
    "gust_spread": Derived(("gust_kph", "wind_kph"), lambda c: c["gust_kph"] - c["wind_kph"],
                           "gust − wind (km/h): squalliness"),
    "wind_chill_c": Derived(("temp_c", "wind_kph"), _wind_chill, "wind chill (°C)"),
    "heat_index_c": Derived(("temp_c", "humidity"), _heat_index, "heat index (°C)"),
    "uv_under_cloud": Derived(("uv", "cloud"), lambda c: c["uv"] * (1.0 - c["cloud"] / 100.0),
                              "UV index attenuated by cloud cover"),
    "dew_point_depression": Derived(("temp_c", "dew_point_c"), lambda c: c["temp_c"] - c["dew_point_c"],
                                    "air − dew point (°C): dryness, fog risk"),
    "feelslike_gap": Derived(("feelslike_c", "temp_c"), lambda c: c["feelslike_c"] - c["temp_c"],
                             "feels-like − air (°C)"),
    "air_water_gap": Derived(("temp_c", "estimated_water_temp_c"),
                             lambda c: c["temp_c"] - c["estimated_water_temp_c"], "air − water (°C): cold-water risk"),
    "log_precip": Derived(("precip_mm",), lambda c: np.log1p(np.maximum(c["precip_mm"], 0.0)), "log(1 + rain mm)"),
    "abs_latitude": Derived(("latitude",), lambda c: np.abs(c["latitude"]), "|latitude|"),
}
CYCLIC: tuple[str, ...] = ("month_sin", "month_cos", "hour_sin", "hour_cos", "doy_sin", "doy_cos")


# ----------------------------------------------------------------------------- config checks
def _names(value: Any) -> list[str]:
    return [str(v) for v in (value or [])]


def validate_features_config(cfg: Any) -> None:
    """Refuse a feature set that leaks the label, names unknown columns or mixes up roles (ConfigError)."""
    name = getattr(cfg, "name", "?")
    columns, categorical, derived = _names(cfg.columns), _names(cfg.categorical), _names(cfg.derived)
    listed = columns + categorical
    leaked = sorted(set(listed) & schema.LABEL_DERIVED)
    if leaked:
        raise ConfigError(
            f"Feature set '{name}' names {', '.join(leaked)}, which {'is' if len(leaked) == 1 else 'are'} computed "
            "from the label (paddle_score, skill_level): a model fed with them learns the answer, not the weather, "
            "and its scores are meaningless. Remove them from features.columns / features.categorical."
        )
    unknown = sorted(set(listed) - set(schema.COLUMNS))
    if unknown:
        raise ConfigError(
            f"Feature set '{name}' names unknown column(s) {', '.join(unknown)}. Valid columns are: "
            f"{', '.join(c for c in schema.COLUMNS if c not in schema.LABEL_DERIVED)}. Fix the spelling in "
            "conf/features/ or the override."
        )
    ids = sorted(set(listed) & set(schema.ID_COLUMNS))
    if ids:
        raise ConfigError(
            f"Feature set '{name}' names the row identifier(s) {', '.join(ids)}: lake names and timestamps "
            "identify rows, they are not weather. Remove them (set features.cyclic=true for the time of day/year)."
        )
    wrong_num = [c for c in columns if c not in schema.NUMERIC_COLUMNS]
    wrong_cat = [c for c in categorical if c not in schema.CATEGORICAL_COLUMNS]
    if wrong_num or wrong_cat:
        parts = []
        if wrong_num:
            parts.append(f"features.columns holds categorical column(s) {', '.join(wrong_num)}")
        if wrong_cat:
            parts.append(f"features.categorical holds numeric column(s) {', '.join(wrong_cat)}")
        raise ConfigError(
            f"Feature set '{name}': {'; '.join(parts)}. Move each column to the list of its type "
            "(numeric columns under columns, text/category columns under categorical)."
        )
    dupes = sorted({c for c in listed + derived if (listed + derived).count(c) > 1})
    if dupes:
        raise ConfigError(f"Feature set '{name}' lists {', '.join(dupes)} more than once. List each feature once.")
    bad = sorted(set(derived) - set(DERIVED))
    if bad:
        raise ConfigError(
            f"Feature set '{name}' names unknown derived feature(s) {', '.join(bad)}. Known derived features: "
            f"{', '.join(DERIVED)}."
        )
    if not listed and not derived and not getattr(cfg, "cyclic", False):
        raise ConfigError(f"Feature set '{name}' is empty. Name at least one column in features.columns.")
    splits = getattr(cfg, "category_splits", CATEGORY_SPLITS[0])
    if splits not in CATEGORY_SPLITS:
        raise ConfigError(f"features.category_splits={splits!r} is not a known encoding. Use "
                          f"{' or '.join(CATEGORY_SPLITS)} (how xgboost and histgb split on category codes).")


def planned_features(cfg: Any) -> list[tuple[str, str]]:
    """``(name, kind)`` of every feature the set will produce, in order, without looking at data."""
    validate_features_config(cfg)
    out = [(c, "numeric") for c in _names(cfg.columns)]
    out += [(c, "categorical") for c in _names(cfg.categorical)]
    derived = list(CYCLIC) if cfg.cyclic else []
    derived += [d for d in _names(cfg.derived) if d not in derived]
    out += [(d, "numeric") for d in derived]
    return out


# ----------------------------------------------------------------------------- the spec
#: ``features.category_splits``: how tree learners split on category codes. ``native``: category-set splits
#: (XGBoost ``c`` feature types, histgb ``categorical_features``); ``codes``: threshold splits on the integer
#: codes, as on any number. The first is what a spec that predates the setting was trained with.
CATEGORY_SPLITS = ("native", "codes")


@dataclass
class FeatureSpec:
    """A frozen feature set: ordered features (name, kind, levels, source) and the columns it reads."""

    name: str
    features: list[dict[str, Any]]
    required_columns: list[str]
    version: int = SPEC_VERSION
    category_splits: str = CATEGORY_SPLITS[0]
    _plan: Optional["_Plan"] = field(default=None, init=False, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        return {"format": SPEC_FORMAT, "version": self.version, "name": self.name,
                "features": [dict(f) for f in self.features], "required_columns": list(self.required_columns),
                "category_splits": self.category_splits}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "FeatureSpec":
        if not isinstance(data, Mapping) or data.get("format") != SPEC_FORMAT:
            raise RunDirError("This file is not a kaayko feature spec (its 'format' field is missing or wrong). "
                              "Point at the feature_spec.json a training run wrote, or retrain.")
        if data.get("version") != SPEC_VERSION:
            raise RunDirError(
                f"The feature spec was written by feature-code version {data.get('version')}, this installation "
                f"reads version {SPEC_VERSION}: the matrix would be built differently. Retrain the model with this "
                "version, or install the kaayko-exp version that trained it."
            )
        feats = []
        for f in data.get("features", []):
            kind, source = f.get("kind"), f.get("source")
            if kind not in ("numeric", "categorical") or not isinstance(f.get("name"), str):
                raise RunDirError(f"The feature spec has a malformed feature entry {f!r}. Retrain the model.")
            if f.get("derived") and source not in DERIVED:
                raise RunDirError(f"The feature spec uses unknown derived feature '{source}'. Retrain the model.")
            if kind == "categorical" and not isinstance(f.get("levels"), list):
                raise RunDirError(f"Categorical feature '{f['name']}' has no levels in the spec. Retrain the model.")
            feats.append(dict(f))
        splits = data.get("category_splits", CATEGORY_SPLITS[0])
        if splits not in CATEGORY_SPLITS:
            raise RunDirError(f"The feature spec names an unknown category_splits {splits!r}. Retrain the model.")
        return cls(name=str(data.get("name")), features=feats,
                   required_columns=[str(c) for c in data.get("required_columns", [])], category_splits=splits)

    def save(self, path: str | Path) -> Path:
        """Write the spec as JSON, atomically."""
        return atomic.write_json(path, self.to_dict())

    @classmethod
    def load(cls, path: str | Path) -> "FeatureSpec":
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise RunDirError(f"Cannot read the feature spec {path}: {exc}. The run's model directory is "
                              "incomplete or damaged; retrain or restore it.") from exc
        return cls.from_dict(data)

    @property
    def plan(self) -> "_Plan":
        if self._plan is None:
            self._plan = _Plan(self)
        return self._plan


def _frame_levels(column: pd.Series) -> list[str]:
    """The levels that occur in ``column`` (not a categorical dtype's declared but unused categories)."""
    if isinstance(column.dtype, pd.CategoricalDtype):
        codes = column.cat.codes.to_numpy()
        values = column.cat.categories[np.unique(codes[codes >= 0])]
    else:
        values = pd.unique(column.dropna())
    return [str(v) for v in values]


def categorical_sources(cfg: Any) -> list[str]:
    """The columns whose levels a spec of the feature set ``cfg`` records (what :func:`observed_levels` needs)."""
    return [name for name, kind in planned_features(cfg) if kind == "categorical" and name not in DERIVED]


def observed_levels(frame: pd.DataFrame, columns: Iterable[str]) -> dict[str, list[str]]:
    """The levels occurring in each of ``columns`` of ``frame`` (those it has); the union over the row blocks of
    a table is the table's levels, so a cluster reduces this per partition (kaayko_exp/cluster/features.py)."""
    return {c: _frame_levels(frame[c]) for c in columns if c in frame.columns}


def build_spec(cfg: Any, frame: pd.DataFrame) -> FeatureSpec:
    """Freeze the feature set ``cfg`` against ``frame``: category levels = the levels occurring in ``frame``
    ∪ the fixed vocabulary, sorted. Pass the TRAINING rows only (see the module docstring)."""
    return spec_from_levels(cfg, list(frame.columns), observed_levels(frame, categorical_sources(cfg)))


def spec_from_levels(cfg: Any, columns: Iterable[str], levels: Mapping[str, Iterable[str]]) -> FeatureSpec:
    """:func:`build_spec` from what it reads of the training rows: their ``columns`` and the ``levels`` occurring
    in each categorical column (:func:`observed_levels`, or its union over partitions)."""
    columns = list(columns)
    features: list[dict[str, Any]] = []
    required: list[str] = []

    def need(col: str) -> None:
        if col not in required:
            required.append(col)

    for name, kind in planned_features(cfg):
        if name in DERIVED:
            d = DERIVED[name]
            features.append({"name": name, "kind": "numeric", "source": name, "derived": True,
                             "inputs": list(d.inputs)})
            for col in d.inputs:
                need("datetime" if col == HOUR else col)
        elif kind == "categorical":
            if name not in columns:
                raise ConfigError(f"Feature set '{cfg.name}' needs column '{name}', which the data lacks.")
            seen = {str(v) for v in levels.get(name, ())}
            features.append({"name": name, "kind": "categorical", "source": name,
                             "levels": sorted(seen | set(FIXED_LEVELS.get(name, ())))})
            need(name)
        else:
            features.append({"name": name, "kind": "numeric", "source": name})
            need(name)
    missing = [c for c in required if c not in columns]
    if missing:
        raise ConfigError(f"Feature set '{cfg.name}' needs column(s) {', '.join(missing)}, which the data lacks.")
    return FeatureSpec(name=str(cfg.name), features=features, required_columns=required,
                       category_splits=str(getattr(cfg, "category_splits", CATEGORY_SPLITS[0])))


def _as_column(data: Any, name: str) -> pd.Series:
    column = data[name]
    if isinstance(column, pd.Series):
        return column
    return pd.Series(np.atleast_1d(np.asarray(column, dtype=object)).reshape(-1), dtype=object)


def _unseen_mask(column: pd.Series, levels: list[str]) -> np.ndarray:
    """True where ``column`` holds a value (not missing) outside ``levels``; per category for categoricals."""
    if isinstance(column.dtype, pd.CategoricalDtype):
        bad = ~column.cat.categories.astype(str).isin(levels)
        codes = column.cat.codes.to_numpy()
        return (codes >= 0) & bad[np.maximum(codes, 0)]
    text = column.astype("string")
    return (text.notna() & ~text.isin(levels)).to_numpy(dtype=bool, na_value=False)


def unseen(spec: FeatureSpec, data: Any) -> tuple[dict[str, dict[str, int]], int]:
    """``(unseen_levels(spec, data), unseen_rows(spec, data))`` with each column's mask computed once."""
    out: dict[str, dict[str, int]] = {}
    hit: np.ndarray | None = None
    for f in spec.features:
        if f["kind"] != "categorical" or f["source"] not in data:
            continue
        column = _as_column(data, f["source"])
        mask = _unseen_mask(column, f["levels"])
        if mask.any():
            counts = column[mask].astype(str).value_counts()
            out[f["source"]] = {str(v): int(n) for v, n in sorted(counts.items())}
            hit = mask if hit is None else hit | mask
    return out, 0 if hit is None else int(hit.sum())


def unseen_levels(spec: FeatureSpec, data: Any) -> dict[str, dict[str, int]]:
    """Category values of ``data`` that the spec's levels lack: ``{column: {value: rows}}``.

    ``data`` is a DataFrame or a mapping of column -> scalar / array (a serving row).
    Missing values are not counted (they are missing, not unseen); columns without an
    unseen value are left out, so ``{}`` means every category was seen in training.
    Such values get the NaN code in :func:`transform` (see the module docstring).
    """
    return unseen(spec, data)[0]


def unseen_rows(spec: FeatureSpec, data: Any) -> int:
    """Number of rows of ``data`` with at least one category value the spec's levels lack."""
    return unseen(spec, data)[1]


def feature_names(spec: FeatureSpec) -> list[str]:
    return [f["name"] for f in spec.features]


def categorical_mask(spec: FeatureSpec) -> np.ndarray:
    """Boolean mask over the matrix columns: True for categorical codes."""
    return np.array([f["kind"] == "categorical" for f in spec.features], dtype=bool)


def category_split_mask(spec: FeatureSpec) -> np.ndarray:
    """The columns tree learners split on as categories (``category_splits=native``); none with ``codes``."""
    mask = categorical_mask(spec)
    return mask if getattr(spec, "category_splits", CATEGORY_SPLITS[0]) == "native" else np.zeros_like(mask)


# ----------------------------------------------------------------------------- transform
# Cyclic features are computed together in one vectorised block: (source, offset, period, is_sin).
_CYCLIC_DEF = {
    "month_sin": ("month", 1.0, 12.0, True), "month_cos": ("month", 1.0, 12.0, False),
    "hour_sin": (HOUR, 0.0, 24.0, True), "hour_cos": (HOUR, 0.0, 24.0, False),
    "doy_sin": ("day_of_year", 1.0, 365.25, True), "doy_cos": ("day_of_year", 1.0, 365.25, False),
}


class _Plan:
    """Precomputed layout and lookup tables that make transform() cheap on one row.

    Sources are gathered into one float32 block G = [numeric features | category codes |
    extra numeric inputs of derived features | hour]; the output copies G's first
    columns and appends the derived features computed (float64) from G.
    """

    def __init__(self, spec: FeatureSpec):
        feats = spec.features
        self.k = len(feats)
        self.required = list(spec.required_columns)
        raw = [(j, f["source"]) for j, f in enumerate(feats) if f["kind"] == "numeric" and not f.get("derived")]
        cats = [(j, f) for j, f in enumerate(feats) if f["kind"] == "categorical"]
        derived = [(j, f["source"]) for j, f in enumerate(feats) if f.get("derived")]
        self.num_cols = [c for _, c in raw]
        self.cat_cols = [f["source"] for _, f in cats]
        self.cat_levels = [list(f["levels"]) for _, f in cats]
        self.cat_maps = [{lv: float(i) for i, lv in enumerate(levels)} for levels in self.cat_levels]
        extra: list[str] = []
        for _, name in derived:
            for c in DERIVED[name].inputs:
                if c != HOUR and c not in self.num_cols and c not in extra:
                    extra.append(c)
        self.extra_cols = extra
        self.needs_hour = any(HOUR in DERIVED[name].inputs for _, name in derived)
        n_raw, n_cat = len(raw), len(cats)
        self.width = n_raw + n_cat + len(extra) + (1 if self.needs_hour else 0)
        col_of = {c: i for i, c in enumerate(self.num_cols)}
        col_of.update({c: n_raw + n_cat + i for i, c in enumerate(extra)})
        if self.needs_hour:
            col_of[HOUR] = self.width - 1
        self.col_of = col_of
        # where G's leading columns go in the output (identity when the spec is in canonical order)
        self.lead_out = np.array([j for j, _ in raw] + [j for j, _ in cats], dtype=np.intp)
        self.lead_identity = bool(np.array_equal(self.lead_out, np.arange(len(self.lead_out))))
        cyc = [(j, _CYCLIC_DEF[name]) for j, name in derived if name in _CYCLIC_DEF]
        self.cyc_out = np.array([j for j, _ in cyc], dtype=np.intp)
        self.cyc_src = np.array([col_of[d[0]] for _, d in cyc], dtype=np.intp)
        self.cyc_off = np.array([d[1] for _, d in cyc], dtype=np.float64)
        self.cyc_scale = np.array([2.0 * math.pi / d[2] for _, d in cyc], dtype=np.float64)
        self.cyc_sin = np.array([d[3] for _, d in cyc], dtype=bool)
        self.other = [(j, DERIVED[name]) for j, name in derived if name not in _CYCLIC_DEF]
        self.other_inputs = sorted({c for _, d in self.other for c in d.inputs})


def _missing(plan: _Plan, keys: Iterable[str]) -> None:
    present = set(keys)
    missing = [c for c in plan.required if c not in present]
    if missing:
        raise PredictionInputError(
            f"The input lacks column(s) {', '.join(missing)} that the model's feature set needs. Supply them "
            f"(required: {', '.join(plan.required)})."
        )


def _scalar(v: Any) -> Any:
    if type(v) is np.ndarray:
        return v[0] if v.ndim == 1 else v.reshape(-1)[0]
    if isinstance(v, (list, tuple)):
        return v[0]
    if isinstance(v, pd.Series):
        return v.iloc[0]
    return v


def _is_one_row(v: Any) -> bool:
    if isinstance(v, np.ndarray):
        return v.size == 1
    if isinstance(v, (list, tuple, pd.Series, pd.Index)):
        return len(v) == 1
    return True


def _hour_scalar(v: Any) -> float:
    """Hour of the local wall-clock time of one timestamp (``...T14:00+02:00`` -> 14, like the frame path)."""
    if isinstance(v, str):
        if len(v) >= 13 and v[4] == "-" and v[10] in " T" and v[11:13].isdigit():
            return float(int(v[11:13]))
        ts = local_datetimes(pd.Series([v], dtype=object)).iloc[0]
        return float("nan") if pd.isna(ts) else float(ts.hour)
    if isinstance(v, np.datetime64):
        if np.isnat(v):
            return float("nan")
        return float(int(v.astype("datetime64[h]").astype(np.int64)) % 24)
    hour = getattr(v, "hour", None)
    if hour is not None and not pd.isna(v):
        return float(hour)
    return float("nan")


def _hour_column(col: pd.Series) -> np.ndarray:
    """Hour of the local wall-clock time (an offset suffix is dropped, never converted)."""
    return local_datetimes(col).dt.hour.to_numpy(dtype=np.float64, na_value=np.nan)


def _number(column: str, v: Any) -> float:
    if v is None:
        return math.nan
    try:
        return float(v)
    except (TypeError, ValueError):
        if pd.isna(v):
            return math.nan
        raise PredictionInputError(f"Column '{column}' must be a number, got {v!r}.") from None


def _gather_one(plan: _Plan, data: Mapping[str, Any]) -> np.ndarray:
    """G for a single row given as a mapping of column -> scalar or 1-element array."""
    vals = [_number(c, _scalar(data[c])) for c in plan.num_cols]
    for c, mapping in zip(plan.cat_cols, plan.cat_maps):
        v = _scalar(data[c])
        try:
            vals.append(mapping.get(v if isinstance(v, str) else str(v), math.nan))
        except TypeError:
            vals.append(math.nan)
    vals += [_number(c, _scalar(data[c])) for c in plan.extra_cols]
    if plan.needs_hour:
        vals.append(_hour_scalar(_scalar(data["datetime"])))
    return np.array([vals], dtype=np.float32)


def _codes(col: pd.Series, levels: list[str]) -> np.ndarray:
    """float32 codes of ``col`` in ``levels``; unknown or missing values -> NaN."""
    index = pd.Index(levels)
    if isinstance(col.dtype, pd.CategoricalDtype):
        # one float32 code per category, NaN appended for the missing code -1: one lookup per row
        lookup = index.get_indexer(col.cat.categories.astype(str))
        table = np.append(np.where(lookup >= 0, lookup, np.nan).astype(np.float32), np.float32(np.nan))
        return table[col.cat.codes.to_numpy()]
    idx = index.get_indexer(col.astype("string").to_numpy(dtype=object, na_value=None))
    out = idx.astype(np.float32)
    out[idx < 0] = np.nan
    return out


def _gather_frame(plan: _Plan, frame: pd.DataFrame) -> np.ndarray:
    """G for a DataFrame (vectorised per column)."""
    G = np.empty((len(frame), plan.width), dtype=np.float32)
    n_raw = len(plan.num_cols)
    for i, c in enumerate(plan.num_cols + plan.extra_cols):
        col = frame[c]
        try:
            values = col.to_numpy(dtype=np.float32, na_value=np.nan)
        except (TypeError, ValueError):
            values = pd.to_numeric(col, errors="coerce").to_numpy(dtype=np.float32, na_value=np.nan)
        G[:, i if i < n_raw else i + len(plan.cat_cols)] = values
    for i, (c, levels) in enumerate(zip(plan.cat_cols, plan.cat_levels)):
        G[:, n_raw + i] = _codes(frame[c], levels)
    if plan.needs_hour:
        G[:, -1] = _hour_column(frame["datetime"])
    return G


#: Rows per block when transforming a large frame: the row-wise work is the same, its temporaries stay small.
CHUNK_ROWS = 1 << 16


def transform(spec: FeatureSpec, data: Any) -> np.ndarray:
    """The model matrix (float32, n × k) for a DataFrame or a dict of column -> scalar / array.

    The same code serves training (DataFrame) and prediction (one-row dict, the
    fast path). Columns the spec needs but ``data`` lacks raise
    :class:`PredictionInputError`; unknown or missing category values become NaN.
    """
    plan = spec.plan
    if isinstance(data, pd.DataFrame):
        _missing(plan, data.columns)
        if len(data) > CHUNK_ROWS:  # bounded temporaries: the gathered block and float64 angles per chunk
            out = np.empty((len(data), plan.k), dtype=np.float32)
            for start in range(0, len(data), CHUNK_ROWS):
                out[start:start + CHUNK_ROWS] = _finish(plan, _gather_frame(plan, data.iloc[start:start + CHUNK_ROWS]))
            return out
        G = _gather_frame(plan, data)
    else:
        try:
            if not plan.required or _is_one_row(data[plan.required[0]]):
                G = _gather_one(plan, data)
            else:
                G = _gather_frame(plan, pd.DataFrame({c: data[c] for c in plan.required}))
        except KeyError:
            _missing(plan, data.keys())
            raise
    return _finish(plan, G)


def _finish(plan: _Plan, G: np.ndarray) -> np.ndarray:
    """The model matrix from the gathered block ``G`` (the columns in spec order, cyclic and derived added)."""
    n_lead = len(plan.lead_out)
    if n_lead == plan.k and plan.lead_identity:
        return G if G.shape[1] == plan.k else np.ascontiguousarray(G[:, :n_lead])
    out = np.empty((G.shape[0], plan.k), dtype=np.float32)
    if plan.lead_identity:
        out[:, :n_lead] = G[:, :n_lead]
    else:
        out[:, plan.lead_out] = G[:, :n_lead]
    if len(plan.cyc_out):
        ang = (G[:, plan.cyc_src].astype(np.float64) - plan.cyc_off) * plan.cyc_scale
        sin = plan.cyc_sin  # each angle's sine or cosine only (not both, then one picked: half the trig work)
        out[:, plan.cyc_out[sin]] = np.sin(ang[:, sin])
        out[:, plan.cyc_out[~sin]] = np.cos(ang[:, ~sin])
    if plan.other:
        cols = {c: G[:, plan.col_of[c]].astype(np.float64) for c in plan.other_inputs}
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            for j, d in plan.other:
                out[:, j] = d.formula(cols)
    return out
