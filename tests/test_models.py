"""Model families: fit quality, safe save/load, exact resume after a simulated kill, config checks."""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest
from conftest import DiskHooks, Killed, make_frame
from omegaconf import OmegaConf

from kaayko_exp.config import ModelConfig
from kaayko_exp.errors import ConfigError, RunDirError
from kaayko_exp.features.spec import build_spec, transform
from kaayko_exp.models import (
    REGISTRY,
    build_model,
    load_model,
    member_config,
    validate_model_config,
)

SMALL = {  # keep every fit tiny
    "xgboost": {"n_estimators": 40, "max_depth": 4},
    "histgb": {"max_iter": 40},
    "random_forest": {"n_estimators": 20},
    "extra_trees": {"n_estimators": 20},
    "svm": {},
    "ridge": {},
    "rule": {},
}


def cfg_for(name: str, **params):
    cfg = member_config(name)
    if name == "ensemble":
        cfg.members = ["xgboost", "histgb", "ridge"]
        cfg.params = {m: SMALL[m] for m in cfg.members}
    else:
        cfg.params = {**cfg.params, **SMALL[name], **params}
    return cfg


@pytest.fixture(scope="module")
def data():
    frame = make_frame(2400, seed=3)
    lakes = frame["lake"].astype(str).to_numpy()
    test = np.isin(lakes, ["Lake Malawi", "Windermere"])
    val = lakes == "Jenny Lake"
    train = ~test & ~val
    spec = build_spec(OmegaConf.load("conf/features/standard.yaml"), frame[train])  # levels from training rows
    X = transform(spec, frame)
    y = frame["paddle_score"].to_numpy(np.float64)
    return {"spec": spec, "Xtr": X[train], "ytr": y[train], "Xva": X[val], "yva": y[val],
            "Xte": X[test], "yte": y[test]}


def fit(name, data, hooks=None, cfg=None, key="fit", n_jobs=1):
    cfg = cfg or cfg_for(name)
    model = build_model(cfg, seed=7, n_jobs=n_jobs, n_rows=len(data["ytr"]))
    return model.fit(data["Xtr"], data["ytr"], spec=data["spec"], callbacks=[hooks] if hooks else None,
                     resume=hooks, X_val=data["Xva"], y_val=data["yva"], key=key)


def rmse(y, p):
    return float(np.sqrt(np.mean((y - p) ** 2)))


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_family_beats_constant_and_round_trips(name, data, tmp_path):
    model = fit(name, data)
    pred = model.predict(data["Xte"])
    assert pred.dtype == np.float64 and pred.shape == data["yte"].shape and np.isfinite(pred).all()
    baseline = rmse(data["yte"], np.full_like(data["yte"], data["ytr"].mean()))
    assert rmse(data["yte"], pred) < 0.8 * baseline
    files = model.save(tmp_path / "m")
    assert all(p.is_file() for p in files) and (tmp_path / "m" / "model.json") in files
    assert not any(p.suffix in (".pkl", ".pickle", ".joblib") for p in files)
    again = load_model(tmp_path / "m")
    assert again.family == name
    assert np.array_equal(again.predict(data["Xte"]), pred)
    imp = model.feature_importance()
    if imp is not None:
        assert set(imp) == set(data["spec"].features[i]["name"] for i in range(len(data["spec"].features)))


def test_rule_model_scores_hand_computed_rows(data):
    """The rule model reads its inputs back out of the float32 feature matrix; rows scored by hand:
    3 + temp + wind + rain + monsoon + season + zone + uv + cloud points, rounded to 0.5, clipped to 1–5."""
    rows = make_frame(5, seed=9).assign(
        temp_c=[22.0, 10.0, 17.0, 30.0, 26.0], wind_kph=[10.0, 25.0, 3.0, 18.0, 12.0],
        precip_mm=[0.0, 2.0, 0.5, 0.0, 0.0], uv=[5.0, 9.0, 2.0, 8.0, 4.0], cloud=[10.0, 90.0, 50.0, 30.0, 50.0],
        season=["summer", "winter", "winter", "monsoon", "summer"],
        climate_zone=["temperate", "polar", "tropical", "equatorial", "subtropical"])
    # 5.4 -> 5.0 (clip) | 0.3 -> 1.0 (clip) | 3.3 (tropical winter) -> 3.5 | 3.6 (equatorial, dry) -> 3.5 | 4.7 -> 4.5
    model = fit("rule", data)
    assert model.predict(transform(data["spec"], rows)).tolist() == [5.0, 1.0, 3.5, 3.5, 4.5]
    # an unknown season (NaN code) earns no season points: 5.2 -> 5.0 | 0.3 -> 1.0 | 3.0 | 3.6 -> 3.5 | 4.5
    odd = rows.assign(season=["?", "?", "?", "?", "?"])
    assert model.predict(transform(data["spec"], odd)).tolist() == [5.0, 1.0, 3.0, 3.5, 4.5]


def test_xgboost_keeps_booster_for_inplace_predict(data):
    model = fit("xgboost", data)
    X = data["Xte"][:5]
    assert np.array_equal(model.booster.inplace_predict(X).astype(np.float64), model.predict(X))


@pytest.mark.parametrize("params", [{}, {"subsample": 0.7, "colsample_bytree": 0.6, "max_depth": 9, "max_bin": 4096}])
def test_xgboost_fit_leaves_the_predictions_of_its_rows_identical_to_predicting_them(data, params):
    # read from the booster's prediction cache (binned rows) instead of predicting again: the same bits, also for
    # validation rows outside the training range, with missing values and with a category level unseen in training
    Xva = data["Xva"].copy()
    Xva[::3, 0] *= 10.0
    Xva[1::5, 1] = np.nan
    cat = int(np.flatnonzero([f["kind"] == "categorical" for f in data["spec"].features])[0])
    Xva[2::7, cat] = np.nan
    cfg = cfg_for("xgboost", **params)
    model = build_model(cfg, seed=7, n_jobs=2, n_rows=len(data["ytr"]))
    model.fit(data["Xtr"], data["ytr"], spec=data["spec"], X_val=Xva, y_val=data["yva"])
    assert set(model.fit_predictions) == {"train", "val"}
    assert np.array_equal(model.fit_predictions["train"].astype(np.float64), model.predict(data["Xtr"]))
    assert np.array_equal(model.fit_predictions["val"].astype(np.float64), model.predict(Xva))
    # early stopping that drops rounds keeps a sliced booster, which has no cache: nothing is left then
    stopped = fit("xgboost", data, cfg=cfg_for("xgboost", learning_rate=1.0, max_depth=9, early_stopping_rounds=2))
    assert stopped.info["best_iteration"] + 1 < stopped.info["rounds_run"]
    assert stopped.fit_predictions == {}


@pytest.mark.parametrize("name, params, every, kill", [
    ("xgboost", {"subsample": 0.7, "colsample_bytree": 0.6}, 10, 25),
    ("xgboost", {"subsample": 1.0, "colsample_bytree": 1.0}, 7, 15),
    ("random_forest", {}, 6, 12),
    ("extra_trees", {}, 6, 12),
    ("histgb", {"max_features": 0.5}, 10, 30),
])
def test_resume_after_kill_gives_identical_model(name, params, every, kill, data, tmp_path):
    cfg = cfg_for(name, **params)
    reference = fit(name, data, hooks=DiskHooks(tmp_path / "ref", every=every), cfg=cfg, n_jobs=2)
    first = DiskHooks(tmp_path / "run", every=every, kill_at=("fit", kill))
    with pytest.raises(Killed):
        fit(name, data, hooks=first, cfg=cfg, n_jobs=2)
    assert first.saved["fit"][1] < kill + 1 and first.saved["fit"][1] > 0
    second = DiskHooks(tmp_path / "run", every=every, saved=first.saved)
    resumed = fit(name, data, hooks=second, cfg=cfg, n_jobs=2)
    assert second.restored == ["fit"]
    assert second.steps[0][1] > first.saved["fit"][1]  # continued, not restarted
    X = np.vstack([data["Xtr"], data["Xte"]])
    assert np.array_equal(resumed.predict(X), reference.predict(X))
    for model in (resumed, reference):  # the prediction cache of a resumed booster holds every round too
        for part, rows in model.fit_predictions.items():
            assert np.array_equal(rows.astype(np.float64), model.predict(data["Xtr" if part == "train" else "Xva"]))
    # chunking does not change the model either
    oneshot = fit(name, data, hooks=DiskHooks(tmp_path / "one", every=0), cfg=cfg)
    assert np.array_equal(oneshot.predict(X), reference.predict(X))


def test_iterative_learners_report_validation_scores_where_a_callback_reads_them(data, tmp_path):
    class Every(DiskHooks):
        def __init__(self, root, wanted):
            super().__init__(root)
            self.wanted = wanted

        def wants_score(self, key, done, total):
            return done % self.wanted == 0

    hooks = Every(tmp_path / "every", 1)
    fit("xgboost", data, hooks=hooks)
    scores = [s for s in hooks.scores if s is not None]
    assert len(scores) == SMALL["xgboost"]["n_estimators"] and scores[-1] < scores[0]
    assert hooks.steps[-1] == ("fit", 40, 40, False)
    # scored at the steps asked for and at the last one; the same values there
    some = Every(tmp_path / "some", 15)
    fit("xgboost", data, hooks=some)
    assert [i + 1 for i, s in enumerate(some.scores) if s is not None] == [15, 30, 40]
    assert [s for s in some.scores if s is not None] == [hooks.scores[14], hooks.scores[29], hooks.scores[39]]


@pytest.mark.parametrize("max_bin", [16, 1024])
def test_xgboost_max_bin_other_than_the_default_fits_with_a_validation_set(data, max_bin):
    # the validation matrix must be binned like the training matrix (XGBoost refuses a mismatch)
    model = fit("xgboost", data, cfg=cfg_for("xgboost", max_bin=max_bin))
    assert int(model.booster.save_config().count(f'"max_bin":"{max_bin}"')) >= 1
    assert rmse(data["yte"], model.predict(data["Xte"])) < np.std(data["yte"])


def test_ensemble_resume_does_not_refit_finished_members(data, tmp_path):
    cfg = cfg_for("ensemble")
    reference = fit("ensemble", data, cfg=cfg)
    first = DiskHooks(tmp_path, every=10, kill_at=("fit/histgb", 20))
    with pytest.raises(Killed):
        fit("ensemble", data, hooks=first, cfg=cfg)
    assert ("fit/xgboost", 40, 40, True) in first.steps
    second = DiskHooks(tmp_path, every=10, saved=first.saved)
    resumed = fit("ensemble", data, hooks=second, cfg=cfg)
    assert not [s for s in second.steps if s[0] == "fit/xgboost"]  # restored, never re-fitted
    assert second.steps[0][:2] == ("fit/histgb", 30)  # histgb continued from its checkpoint
    assert np.array_equal(resumed.predict(data["Xte"]), reference.predict(data["Xte"]))
    assert np.allclose(reference.predict(data["Xte"]),
                       np.mean([m.predict(data["Xte"]) for m in reference.members], axis=0))


def test_load_refuses_pickle_and_untrusted_types(data, tmp_path):
    import skops.io as sio
    from sklearn.preprocessing import FunctionTransformer

    model = fit("ridge", data)
    model.save(tmp_path / "m")
    est = tmp_path / "m" / "estimator.skops"
    est.write_bytes(pickle.dumps({"evil": 1}))
    with pytest.raises(RunDirError, match="sha256|pickle"):
        load_model(tmp_path / "m")
    # same refusal even when the hash in model.json is made to match
    from kaayko_exp.models import persist

    with pytest.raises(RunDirError, match="pickle"):
        persist.load(est)
    sio.dump(FunctionTransformer(func=os.system), est)  # would run a shell command
    with pytest.raises(RunDirError, match="does not trust"):
        persist.load(est)
    xgb_model = fit("xgboost", data)
    xgb_model.save(tmp_path / "x")
    (tmp_path / "x" / "model.ubj").write_bytes(pickle.dumps([1, 2]))
    with pytest.raises(RunDirError):
        load_model(tmp_path / "x")


def test_unknown_or_reserved_param_is_a_config_error():
    cfg = cfg_for("xgboost", max_dept=10)
    with pytest.raises(ConfigError, match="max_dept.*Valid parameters: .*max_depth"):
        validate_model_config(cfg, 1000)
    with pytest.raises(ConfigError, match="seed"):
        validate_model_config(cfg_for("random_forest", random_state=3), 1000)
    with pytest.raises(ConfigError, match="min_samples_lef"):
        validate_model_config(cfg_for("histgb", min_samples_lef=3), 1000)
    with pytest.raises(ConfigError):
        validate_model_config(cfg_for("ridge", alpha="lots"), 1000)


def test_svm_modes_and_size_limit(data):
    cfg = cfg_for("svm")
    cfg.exact_max_rows = 500
    model = build_model(cfg, seed=1, n_jobs=1, n_rows=len(data["ytr"]))
    assert model.options["mode"] == "approx"
    model.fit(data["Xtr"], data["ytr"], spec=data["spec"])
    assert model.info["mode"] == "approx"
    assert rmse(data["yte"], model.predict(data["Xte"])) < rmse(data["yte"], np.full_like(data["yte"], 3.0))
    cfg.exact = True
    cfg.exact_hard_limit = 100_000
    with pytest.raises(ConfigError, match="model too large for the data"):
        validate_model_config(cfg, 2_400_000)
    assert build_model(cfg, seed=1, n_jobs=1, n_rows=10_000).options["mode"] == "exact"


def test_ensemble_and_rule_config_errors():
    cfg = OmegaConf.merge(OmegaConf.structured(ModelConfig), {"name": "ensemble", "members": ["xgboost", "nope"]})
    with pytest.raises(ConfigError, match="nope.*Known models"):
        validate_model_config(cfg, 100)
    raw_no_season = OmegaConf.create({"name": "tiny", "columns": ["temp_c"], "categorical": [], "cyclic": False,
                                      "derived": []})
    with pytest.raises(ConfigError, match="rule reads"):
        validate_model_config(member_config("rule"), 100, features=raw_no_season)
    with pytest.raises(ConfigError, match="Unknown model"):
        validate_model_config(OmegaConf.create({"name": "lstm", "params": {}}), 100)


def test_chunked_histgb_bins_its_training_rows_once_and_predicts_only_the_first_chunks_trees(data, tmp_path,
                                                                                               monkeypatch):
    from sklearn.ensemble import HistGradientBoostingRegressor
    from sklearn.ensemble._hist_gradient_boosting import binning, predictor

    calls, predicted = [], []
    original = binning._BinMapper.fit_transform
    predict_binned = predictor.TreePredictor.predict_binned

    def counting(self, X, *args, **kw):
        calls.append(X.shape)
        return original(self, X, *args, **kw)

    def counting_trees(self, X, *args, **kw):
        if len(X) == len(data["ytr"]):  # a prediction on the training rows (not a few rows, not validation)
            predicted.append(id(self))
        return predict_binned(self, X, *args, **kw)

    monkeypatch.setattr(binning._BinMapper, "fit_transform", counting)
    monkeypatch.setattr(predictor.TreePredictor, "predict_binned", counting_trees)
    model = fit("histgb", data, hooks=DiskHooks(tmp_path, every=10))  # 40 iterations in 4 chunks
    assert model.estimator.n_iter_ == 40
    # once, not once per chunk (the training rows; fine_bins may give the estimator more columns than X has)
    assert len(calls) == 1 and calls[0][0] == len(data["ytr"])
    # chunk 2 starts from the first chunk's 10 trees, predicted once; chunks 3 and 4 continue from the sums the
    # fit itself kept up to date (not 10 + 20 + 30 trees re-predicted, nor 10 + 20 + 30 predicted once)
    assert len(predicted) == 10 and len(set(predicted)) == 10
    for name in ("_bin_data", "_raw_predict"):
        assert name not in HistGradientBoostingRegressor.__dict__  # the class is left as it was
    oneshot = fit("histgb", data)
    assert np.array_equal(model.predict(data["Xte"]), oneshot.predict(data["Xte"]))


def test_chunked_histgb_recomputes_kept_raw_predictions_that_miss_trees(data, tmp_path):
    """Where the kept training sums do not hold every tree (a scikit-learn whose fit stops updating the array it
    was handed), the next chunk predicts them again instead of boosting from wrong residuals."""
    from kaayko_exp.models import trees

    class Spoil(DiskHooks):
        def after_step(self, key, done, total, score=None, save=None):
            super().after_step(key, done, total, score, save)
            kept = (trees._WORK.cache or {}).get("raw")
            if kept is not None:
                kept += 1.0  # no longer baseline + the trees

    hooks = Spoil(tmp_path, every=10)  # 40 iterations in 4 chunks
    model = fit("histgb", data, hooks=hooks)
    assert model.estimator.n_iter_ == 40
    assert np.array_equal(model.predict(data["Xte"]), fit("histgb", data).predict(data["Xte"]))


def test_chunked_histgb_encodes_its_training_categories_once(data, tmp_path, monkeypatch):
    """With native category splits every warm-start chunk would refit sklearn's ordinal encoder on the same
    training matrix; the first chunk's encoding serves the others and the model is the one-shot model."""
    from sklearn.ensemble import HistGradientBoostingRegressor

    encodings = []
    original = HistGradientBoostingRegressor._preprocess_X

    def counting(self, X, *, reset):
        if reset:
            encodings.append(X.shape)
        return original(self, X, reset=reset)

    monkeypatch.setattr(HistGradientBoostingRegressor, "_preprocess_X", counting)
    model = fit("histgb", data, hooks=DiskHooks(tmp_path, every=10))  # 40 iterations in 4 chunks
    assert model.estimator.is_categorical_ is not None and model.estimator.is_categorical_.any()
    assert len(encodings) == 1 and encodings[0][0] == len(data["ytr"])  # once, on the training rows
    assert HistGradientBoostingRegressor.__dict__["_preprocess_X"] is counting  # the class is left as it was
    encodings.clear()
    oneshot = fit("histgb", data)
    assert np.array_equal(model.predict(data["Xte"]), oneshot.predict(data["Xte"]))


def test_chunked_histgb_validation_scores_are_those_of_the_model_after_each_chunk(data, tmp_path):
    hooks = DiskHooks(tmp_path, every=10)  # 40 iterations in 4 chunks
    model = fit("histgb", data, hooks=hooks)
    from kaayko_exp.models.trees import expand_fine_bins

    Xva = expand_fine_bins(data["Xva"], model.info.get("fine_bin_windows") or {})  # the estimator's columns
    staged = list(model.estimator.staged_predict(Xva.astype(np.float64)))
    expected = [rmse(data["yva"], staged[i - 1]) for i in (10, 20, 30, 40)]
    assert hooks.scores == pytest.approx(expected, rel=1e-12)
    assert model.info["val_rmse"] == pytest.approx(rmse(data["yva"], model.predict(data["Xva"])), rel=1e-12)


def test_chunked_histgb_fits_in_threads_keep_their_own_work(data, tmp_path):
    """Sweep trials and ensemble members fit in threads: concurrent chunked fits (and a plain sklearn fit beside
    them) give the models they give alone, and the class is restored when the last one ends."""
    from concurrent.futures import ThreadPoolExecutor

    from sklearn.ensemble import HistGradientBoostingRegressor

    cfgs = [cfg_for("histgb", max_leaf_nodes=15), cfg_for("histgb", max_leaf_nodes=31, learning_rate=0.2)]
    alone = [fit("histgb", data, hooks=DiskHooks(tmp_path / f"alone{i}", every=10), cfg=c).predict(data["Xte"])
             for i, c in enumerate(cfgs)]
    plain_alone = HistGradientBoostingRegressor(max_iter=20, random_state=3).fit(data["Xtr"], data["ytr"])

    def chunked(i):
        return fit("histgb", data, hooks=DiskHooks(tmp_path / f"thread{i}", every=10), cfg=cfgs[i]).predict(
            data["Xte"])

    def plain():
        return HistGradientBoostingRegressor(max_iter=20, random_state=3).fit(data["Xtr"], data["ytr"])

    with ThreadPoolExecutor(3) as pool:
        futures = [pool.submit(chunked, 0), pool.submit(chunked, 1), pool.submit(plain)]
        results = [f.result() for f in futures]
    assert np.array_equal(results[0], alone[0]) and np.array_equal(results[1], alone[1])
    assert np.array_equal(results[2].predict(data["Xte"]), plain_alone.predict(data["Xte"]))
    for name in ("_bin_data", "_raw_predict"):
        assert name not in HistGradientBoostingRegressor.__dict__


def test_xgboost_reads_validation_scores_by_metric_name(data, tmp_path):
    """eval_metric=mae (issue 16, item 4): the callbacks still get the validation RMSE, early stopping watches
    the MAE, and model.json names each score by its metric."""
    from kaayko_exp.models.callbacks import FitCallback

    class Scores(FitCallback):
        def __init__(self):
            self.seen = {}

        def wants_score(self, key, done, total):
            return True

        def after_step(self, key, done, total, score=None, save=None):
            self.seen[done] = score

    scores = Scores()
    cfg = cfg_for("xgboost", eval_metric="mae", early_stopping_rounds=3, learning_rate=0.6, n_estimators=200)
    model = build_model(cfg, seed=7, n_jobs=1, n_rows=len(data["ytr"]))
    model.fit(data["Xtr"], data["ytr"], spec=data["spec"], callbacks=[scores], X_val=data["Xva"], y_val=data["yva"])
    info, y = model.info, data["yva"]
    kept = info["best_iteration"] + 1
    assert info["rounds_run"] == kept + 3 < 200  # stopped 3 rounds after its best
    for done in (1, kept // 2 + 1, kept):  # the score a callback got after `done` rounds is that model's RMSE
        pred = model.booster[:done].inplace_predict(data["Xva"]).astype(np.float64)
        assert scores.seen[done] == pytest.approx(rmse(y, pred), rel=1e-5)
    pred = model.predict(data["Xva"])
    assert info["early_stopping_metric"] == "mae"
    assert info["val_rmse"] == pytest.approx(rmse(y, pred), rel=1e-5)
    assert info["val_mae"] == info["best_val_mae"] == pytest.approx(float(np.mean(np.abs(y - pred))), rel=1e-5)
    model.save(tmp_path / "m")
    assert load_model(tmp_path / "m").info["val_rmse"] == info["val_rmse"]


def test_chunked_histgb_uses_sklearns_own_path_where_a_private_method_differs(data, tmp_path, monkeypatch):
    """scikit-learn changes the private methods the chunk reuse calls (1.9 added sample_weight to _bin_data; on
    1.5-1.8 the reuse crashed every chunked fit). A method whose signature lacks a parameter the reuse passes is
    not patched: each chunk bins on its own (slower), and the model is the same."""
    from sklearn.ensemble import HistGradientBoostingRegressor
    from sklearn.ensemble._hist_gradient_boosting import binning

    from kaayko_exp.models import trees

    original_bin_data = HistGradientBoostingRegressor._bin_data

    def other_signature(self, X, *args, **kwargs):  # no parameter named is_training_data
        return original_bin_data(self, X, *args, **kwargs)

    calls = []
    fit_transform = binning._BinMapper.fit_transform

    def counting(self, X, *args, **kw):
        calls.append(X.shape)
        return fit_transform(self, X, *args, **kw)

    monkeypatch.setattr(HistGradientBoostingRegressor, "_bin_data", other_signature)
    monkeypatch.setattr(binning._BinMapper, "fit_transform", counting)
    monkeypatch.setattr(trees, "_API", {})  # detected afresh
    model = fit("histgb", data, hooks=DiskHooks(tmp_path, every=10))  # 40 iterations in 4 chunks
    assert model.estimator.n_iter_ == 40 and len(calls) == 4  # sklearn's own binning, once per chunk
    assert HistGradientBoostingRegressor.__dict__["_bin_data"] is other_signature  # never patched
    monkeypatch.undo()
    assert np.array_equal(model.predict(data["Xte"]), fit("histgb", data).predict(data["Xte"]))


@pytest.mark.parametrize("name", ["xgboost", "histgb"])
def test_category_splits_codes_trains_threshold_splits_on_the_codes(name, data, tmp_path):
    """features.category_splits=codes: the tree learners see the category codes as numbers (no category-set
    splits), the setting travels in the saved feature spec, and native (the spec's default) keeps them."""
    import dataclasses

    from kaayko_exp.features.spec import FeatureSpec

    codes_spec = dataclasses.replace(data["spec"], category_splits="codes")
    saved = FeatureSpec.load(codes_spec.save(tmp_path / "spec.json"))
    assert saved.category_splits == "codes"
    models = {}
    for splits, spec in (("native", data["spec"]), ("codes", saved)):
        model = build_model(cfg_for(name), seed=7, n_jobs=1, n_rows=len(data["ytr"]))
        models[splits] = model.fit(data["Xtr"], data["ytr"], spec=spec, X_val=data["Xva"], y_val=data["yva"])
        assert model.info["category_splits"] == splits
    if name == "xgboost":
        types = {s: m.booster.feature_types for s, m in models.items()}
        assert "c" in types["native"] and set(types["codes"]) == {"q"}
    else:
        assert models["native"].estimator.is_categorical_.any() and models["codes"].estimator.is_categorical_ is None
    assert not np.array_equal(models["native"].predict(data["Xte"]), models["codes"].predict(data["Xte"]))


def test_category_splits_refuses_an_unknown_encoding():
    from kaayko_exp.errors import ConfigError
    from kaayko_exp.features.spec import validate_features_config

    cfg = OmegaConf.load("conf/features/standard.yaml")
    validate_features_config(cfg)  # the default (no key): native
    cfg.category_splits = "onehot"
    with pytest.raises(ConfigError, match="category_splits='onehot'.*native or codes"):
        validate_features_config(cfg)


def test_xgboost_row_draw_keeps_the_subsample_share_per_round_seeded():
    """The per-round 0/1 row weights (resume-exact subsampling) come from 16-bit slices of the generator's raw
    output: each row kept with probability subsample, the same draw for the same (seed, round)."""
    from kaayko_exp.models.xgboost_model import row_draw

    n = 200_001
    for share in (0.8, 0.5, 0.05):
        w = row_draw(np.random.default_rng([42, 3, 0x5B]), n, share)
        assert w.dtype == np.float32 and w.shape == (n,) and set(np.unique(w)) <= {0.0, 1.0}
        assert abs(w.mean() - share) < 4 * np.sqrt(share * (1 - share) / n)
        assert np.array_equal(w, row_draw(np.random.default_rng([42, 3, 0x5B]), n, share))
    other = row_draw(np.random.default_rng([42, 4, 0x5B]), n, 0.8)
    assert not np.array_equal(other, row_draw(np.random.default_rng([42, 3, 0x5B]), n, 0.8))
    # rows are independent: the kept share of odd and even rows agree (no pattern from the 64-bit slicing)
    assert abs(other[::2].mean() - other[1::2].mean()) < 0.01


def test_library_versions_import_no_learner_library():
    """The model file's library versions come from the package metadata: recording them loads neither xgboost
    (in a histgb run) nor scikit-learn or skops, each of which takes a second or so to import."""
    import subprocess
    import sys
    from importlib.metadata import version

    code = ("import sys, json; from kaayko_exp.models.base import library_versions; v = library_versions(); "
            "print(json.dumps([v, sorted(m for m in ('xgboost', 'sklearn', 'skops') if m in sys.modules)]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    import json

    versions, loaded = json.loads(out)
    assert loaded == []
    assert versions == {"numpy": np.__version__, "scikit-learn": version("scikit-learn"),
                        "xgboost": version("xgboost"), "skops": version("skops")}
