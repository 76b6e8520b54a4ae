"""The bare-library baseline of bench_overhead.py: no kaayko_exp import, no Hydra, no run directory.

Usage: python bench/bare_fit.py PARQUET {xgboost|histgb} PARAMS_JSON [SEED] [native|codes]

Reads the cached parquet a run uses into one float32 matrix (the standard feature set's numeric columns,
category codes, sin/cos of month, hour and day of year: the run's 35 features), holds out 20 % of the lakes
(seeded), trains the learner with the given parameters (XGBoost hist on a QuantileDMatrix; scikit-learn
HistGradientBoostingRegressor), the category codes split as categories (``native``, the default) or as numbers
(``codes``), as ``features.category_splits`` says, and predicts the held-out rows. Prints one JSON line (rows,
MAE, and the seconds of its parts: ``start`` interpreter and imports, of which ``import`` the learner's library,
``data`` parquet to matrix and split, ``fit``, ``predict``).
"""

from __future__ import annotations

import time

T0 = time.perf_counter()  # noqa: E402  (before the heavy imports: they are part of the start-up)

import json  # noqa: E402
import sys  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

NUMERIC = ["temp_c", "wind_kph", "humidity", "cloud", "uv", "precip_mm", "pressure_mb", "dew_point_c",
           "feelslike_c", "gust_kph", "is_day", "will_it_rain", "will_it_snow", "vis_km", "estimated_water_temp_c",
           "estimated_wave_height_m", "latitude", "longitude", "month", "day_of_year"]
CATEGORICAL = ["wind_dir", "condition", "season", "season_intensity", "hemisphere", "climate_zone", "region",
               "regional_pattern", "lake_type"]
CYCLIC = {"month": (1.0, 12.0), "hour": (0.0, 24.0), "day_of_year": (1.0, 365.0)}


def matrix(path: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    df = pd.read_parquet(path)
    n = len(df)
    X = np.empty((n, len(NUMERIC) + len(CATEGORICAL) + 2 * len(CYCLIC)), dtype=np.float32)
    for j, c in enumerate(NUMERIC):
        X[:, j] = df[c].to_numpy(dtype=np.float32)
    j0 = len(NUMERIC)
    for j, c in enumerate(CATEGORICAL):
        codes = df[c].cat.codes.to_numpy()
        X[:, j0 + j] = np.where(codes < 0, np.nan, codes).astype(np.float32)
    j0 += len(CATEGORICAL)
    src = {"month": df["month"].to_numpy(), "hour": df["datetime"].dt.hour.to_numpy(),
           "day_of_year": df["day_of_year"].to_numpy()}
    for j, (c, (off, period)) in enumerate(CYCLIC.items()):
        ang = (src[c].astype(np.float32) - off) * np.float32(2 * np.pi / period)
        X[:, j0 + 2 * j], X[:, j0 + 2 * j + 1] = np.sin(ang), np.cos(ang)
    y = df["paddle_score"].to_numpy(dtype=np.float32)
    lakes = df["lake"].cat.codes.to_numpy()
    del df
    return X, y, lakes, len(CATEGORICAL)


def fine_bin_copies(Xtr: np.ndarray, Xte: np.ndarray, cat: np.ndarray, max_bins: int):
    """Each numeric column with more than ``max_bins`` distinct training values replaced by its copies clipped to
    consecutive windows of at most ``max_bins`` of them (what histgb's ``fine_bins`` feeds scikit-learn)."""
    tr, te, mask = [], [], []
    for j in range(Xtr.shape[1]):
        values = np.unique(Xtr[:, j][~np.isnan(Xtr[:, j])])
        if cat[j] or len(values) <= max_bins:
            tr.append(Xtr[:, j]), te.append(Xte[:, j]), mask.append(cat[j])
            continue
        for s in range(0, len(values) - 1, max_bins - 1):
            lo, hi = values[s], values[min(s + max_bins - 1, len(values) - 1)]
            tr.append(np.clip(Xtr[:, j], lo, hi)), te.append(np.clip(Xte[:, j], lo, hi)), mask.append(False)
    return np.column_stack(tr), np.column_stack(te), np.array(mask)


def main() -> None:
    path, family, params = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    seed = int(sys.argv[4]) if len(sys.argv) > 4 else 42
    native = (sys.argv[5] if len(sys.argv) > 5 else "native") == "native"
    t = time.perf_counter()
    if family == "xgboost":
        import xgboost as xgb
    else:
        from sklearn.ensemble import HistGradientBoostingRegressor
    parts = {"start": time.perf_counter() - T0, "import": time.perf_counter() - t}
    t = time.perf_counter()
    X, y, lakes, _ = matrix(path)
    cat = np.zeros(X.shape[1], dtype=bool)
    if native:
        cat[len(NUMERIC):len(NUMERIC) + len(CATEGORICAL)] = True
    rng = np.random.default_rng(seed)
    uniq = np.unique(lakes)
    test_lakes = rng.choice(uniq, max(1, int(round(0.2 * len(uniq)))), replace=False)
    test = np.isin(lakes, test_lakes)
    parts["data"], t = time.perf_counter() - t, time.perf_counter()
    if family == "xgboost":

        p = dict(params)
        rounds = int(p.pop("n_estimators", 300))
        p.pop("early_stopping_rounds", None)
        p.update(seed=seed, nthread=-1)
        ftypes = ["c" if c else "q" for c in cat]
        dtrain = xgb.QuantileDMatrix(X[~test], label=y[~test], feature_types=ftypes, enable_categorical=True,
                                     max_bin=int(p.get("max_bin", 256)))
        bst = xgb.train(p, dtrain, num_boost_round=rounds)
        parts["fit"], t = time.perf_counter() - t, time.perf_counter()
        pred = bst.inplace_predict(X[test])
    else:
        params = dict(params)
        Xtr, Xte = X[~test], X[test]
        if params.pop("fine_bins", False):  # the run's fine_bins: copies clipped to windows of max_bins values
            Xtr, Xte, cat = fine_bin_copies(Xtr, Xte, cat, int(params.get("max_bins", 255)))
        est = HistGradientBoostingRegressor(**params, categorical_features=cat if native else None,
                                            random_state=seed)
        est.fit(Xtr, y[~test])
        parts["fit"], t = time.perf_counter() - t, time.perf_counter()
        pred = est.predict(Xte)
    parts["predict"] = time.perf_counter() - t
    print(json.dumps({"rows": int(len(y)), "test_rows": int(test.sum()),
                      "mae": float(np.mean(np.abs(pred - y[test]))), "seconds": parts}))


if __name__ == "__main__":
    main()
