"""The post-model safety layer: default vs original thresholds, adjustments with reasons, vectorised ==
single-row, per-rule shares, and its effect on real rows."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf

from kaayko_exp.config import SafetyConfig
from kaayko_exp.errors import ConfigError, PredictionInputError
from kaayko_exp.serving.safety import (
    SafetyLayer,
    apply_safety,
    format_adjustment,
    safety_config_dict,
)

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf" / "safety"
SAMPLE = "tests/data/kaayko_sample"

CALM = dict(temp_c=22.0, wind_kph=10.0, gust_kph=12.0, estimated_wave_height_m=0.2,
            estimated_water_temp_c=18.0, vis_km=10.0, precip_mm=0.0, uv=5.0)


def _cfg(name: str):
    return OmegaConf.merge(OmegaConf.structured(SafetyConfig), OmegaConf.load(CONF / f"{name}.yaml"))


@pytest.fixture(scope="module")
def kaayko():
    return SafetyLayer(_cfg("kaayko"))


@pytest.fixture(scope="module")
def original():
    return SafetyLayer(_cfg("kaayko_original"))


def _one(layer, score=4.2, **changes):
    return layer.apply_one({**CALM, **changes}, score)


def test_calm_row_keeps_model_score(kaayko, original):
    for layer in (kaayko, original):
        res = _one(layer, 4.2)
        assert (res.model_score, res.paddle_score, res.adjustments, res.warnings) == (4.0, 4.0, [], [])


def test_train_config_defaults_to_the_new_layer():
    defaults = OmegaConf.to_container(OmegaConf.load(ROOT / "conf" / "train.yaml"))["defaults"]
    assert {"safety": "kaayko"} in defaults
    assert _cfg("kaayko").name == "kaayko" and _cfg("kaayko_original").name == "kaayko_original"


# --------------------------------------------------------------------------- default layer
@pytest.mark.parametrize("changes, rule, delta", [
    ({"gust_kph": 50.1}, "gusts", -1.0), ({"gust_kph": 50.0}, "gusts", -0.5), ({"gust_kph": 40.1}, "gusts", -0.5),
    ({"gust_kph": 40.0}, None, 0.0),
    ({"estimated_water_temp_c": 9.9}, "cold_water", -1.0), ({"estimated_water_temp_c": 10.0}, "cold_water", -0.5),
    ({"estimated_water_temp_c": 14.9}, "cold_water", -0.5), ({"estimated_water_temp_c": 15.0}, None, 0.0),
    # cold water is gated on air >= 15 °C: below it the label's air-temperature points price the cold
    ({"estimated_water_temp_c": 9.0, "temp_c": 15.0}, "cold_water", -1.0),
    ({"estimated_water_temp_c": 9.0, "temp_c": 14.9}, None, 0.0),
    ({"vis_km": 0.9}, "visibility", -1.0), ({"vis_km": 1.0}, "visibility", -0.5), ({"vis_km": 1.9}, "visibility", -0.5),
    ({"vis_km": 2.0}, None, 0.0),
])
def test_default_rule_thresholds(kaayko, changes, rule, delta):
    res = _one(kaayko, 4.0, **changes)
    assert res.model_score == 4.0 and res.paddle_score == 4.0 + delta
    assert [a["rule"] for a in res.adjustments] == ([rule] if rule else [])
    assert [a["delta"] for a in res.adjustments] == ([delta] if rule else [])


@pytest.mark.parametrize("changes", [
    {"temp_c": 36.0}, {"temp_c": 3.0, "estimated_water_temp_c": 20.0},      # air temperature: priced by the label
    {"wind_kph": 38.0, "gust_kph": 40.0},                                   # sustained wind: priced
    {"precip_mm": 7.0}, {"uv": 11.0},                                       # rain, UV: priced
    {"estimated_wave_height_m": 1.6},                                       # waves: a function of the wind
    {"gust_kph": 30.0},                                                     # gust 20 km/h above the wind
])
def test_default_ignores_hazards_the_label_prices(kaayko, original, changes):
    assert _one(kaayko, 4.0, **changes).adjustments == []
    assert _one(original, 4.0, **changes).adjustments  # while the original penalises each of them


def test_reasons_name_value_threshold_and_gate(kaayko):
    res = _one(kaayko, 3.6, gust_kph=45.0, vis_km=0.5, estimated_water_temp_c=12.34, temp_c=22.0)
    assert res.model_score == 3.5 and res.paddle_score == 1.5  # 3.5 - 0.5 - 1 - 0.5
    assert res.adjustments == [
        {"rule": "gusts", "delta": -0.5, "reason": "gust 45 km/h > 40 km/h"},
        {"rule": "cold_water", "delta": -0.5, "reason": "water (estimated) 12.34 °C < 15 °C with air 22 °C ≥ 15 °C"},
        {"rule": "visibility", "delta": -1.0, "reason": "visibility 0.5 km < 1 km"},
    ]
    assert format_adjustment(res.adjustments[0]) == "gusts −0.5 (gust 45 km/h > 40 km/h)"
    assert [w.split(":")[0] for w in res.warnings] == ["Fog"]


def test_paddle_score_is_model_score_plus_adjustments_clipped(kaayko):
    # raw 4.25 rounds to 4.0 (halves to even); one -0.5 rule gives 3.5, as the listed adjustment says
    res = _one(kaayko, 4.25, gust_kph=45.0)
    assert (res.model_score, res.paddle_score) == (4.0, 3.5)
    res = _one(kaayko, 1.4, gust_kph=60.0, vis_km=0.2)  # 1.5 - 2 -> clipped to 1
    assert (res.model_score, res.paddle_score) == (1.5, 1.0) and len(res.adjustments) == 2


# --------------------------------------------------------------------------- original layer
@pytest.mark.parametrize("changes, delta", [
    ({"temp_c": 35.1}, -1.0), ({"temp_c": 35.0}, -0.5), ({"temp_c": 29.6}, -0.5), ({"temp_c": 29.5}, 0.0),
    ({"temp_c": -0.1}, -1.0), ({"temp_c": 4.9}, -0.5), ({"temp_c": 5.0}, 0.0),
    ({"wind_kph": 41.0, "gust_kph": 41.0}, -2.0), ({"wind_kph": 33.0, "gust_kph": 33.0}, -1.5),
    ({"wind_kph": 25.0, "gust_kph": 25.0}, -1.0), ({"wind_kph": 24.0, "gust_kph": 24.0}, 0.0),
    ({"gust_kph": 20.0}, -1.0), ({"gust_kph": 16.0}, -0.5), ({"gust_kph": 15.9}, 0.0),
    ({"estimated_wave_height_m": 1.6}, -1.0), ({"estimated_wave_height_m": 0.9}, -0.5),
    ({"estimated_water_temp_c": 4.0}, -1.0), ({"estimated_water_temp_c": 9.9}, -0.5),
    ({"vis_km": 4.0}, -1.0), ({"vis_km": 9.0}, -0.5),
    ({"precip_mm": 6.0}, -1.0), ({"precip_mm": 2.0}, -0.5), ({"precip_mm": 1.9}, 0.0),
    ({"uv": 10.5}, -1.0), ({"uv": 9.0}, -0.5), ({"uv": 8.0}, 0.0),
])
def test_original_rule_thresholds(original, changes, delta):
    res = _one(original, 4.0, **changes)
    assert res.paddle_score == 4.0 + delta
    assert sum(a["delta"] for a in res.adjustments) == delta


@pytest.mark.parametrize("changes, expected", [
    ({"temp_c": -5.0}, ["Extreme cold"]), ({"temp_c": 0.0}, ["Freezing"]), ({"temp_c": 0.1}, []),
    ({"wind_kph": 60.0, "gust_kph": 60.0}, ["Dangerous wind"]),
    ({"wind_kph": 40.0, "gust_kph": 40.0}, ["Strong wind"]),
    ({"precip_mm": 10.1}, ["Heavy rain"]), ({"precip_mm": 10.0}, []),
    ({"vis_km": 0.9}, ["Fog"]),
    ({"temp_c": -6.0, "vis_km": 0.5, "precip_mm": 12.0}, ["Extreme cold", "Heavy rain", "Fog"]),
])
def test_original_warnings(original, changes, expected):
    assert [w.split(":")[0] for w in _one(original, 3.0, **changes).warnings] == expected


def test_default_warns_of_cold_water_without_changing_the_score(kaayko):
    res = _one(kaayko, 3.0, temp_c=5.0, estimated_water_temp_c=2.0)
    assert res.adjustments == [] and [w.split(":")[0] for w in res.warnings] == ["Cold water"]


# --------------------------------------------------------------------------- vectorised
def _random_frame(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    wind = rng.choice(np.round(np.arange(0, 80, 0.1), 1), n)
    return pd.DataFrame({
        "temp_c": rng.choice(np.round(np.arange(-10, 42, 0.1), 1), n),
        "wind_kph": wind,
        "gust_kph": np.round(wind + rng.choice(np.round(np.arange(0, 15, 0.1), 1), n), 1),
        "estimated_wave_height_m": np.minimum(0.0016 * wind ** 1.2, 3.0),
        "estimated_water_temp_c": rng.choice(np.round(np.arange(0, 30, 0.1), 1), n),
        "vis_km": rng.choice([0.5, 1.0, 1.9, 2.0, 4.0, 5.0, 9.0, 10.0], n),
        "precip_mm": rng.choice([0.0, 0.5, 2.0, 5.9, 6.0, 11.0], n),
        "uv": rng.choice(np.arange(0, 12, 1.0), n),
    })


@pytest.mark.parametrize("name", ["kaayko", "kaayko_original"])
def test_vectorised_equals_single_row_including_float32_storage(name):
    layer = SafetyLayer(_cfg(name))
    frame = _random_frame(3000)
    scores = np.random.default_rng(1).uniform(0.5, 5.5, len(frame))
    r64 = apply_safety(frame, scores, layer)
    # parquet stores these columns as float32: thresholds must not flip (e.g. gust == 40.0)
    f32 = frame.astype({c: "float32" for c in frame.columns if c != "estimated_wave_height_m"})
    r32 = apply_safety(f32, scores, layer)
    np.testing.assert_array_equal(r64.paddle_score, r32.paddle_score)
    assert r64.warnings.tolist() == r32.warnings.tolist() and r64.adjustments.tolist() == r32.adjustments.tolist()
    for i in range(0, len(frame), 7):
        one = layer.apply_one({k: float(v) for k, v in frame.iloc[i].items()}, scores[i])
        assert one.model_score == r64.model_score[i] and one.paddle_score == r64.paddle_score[i]
        assert one.warnings == r64.warnings[i] and one.adjustments == r64.adjustments[i]
    assert r64.paddle_score.min() >= 1.0 and r64.paddle_score.max() <= 5.0
    assert np.all(r64.paddle_score * 2 == np.round(r64.paddle_score * 2))
    assert any(r64.warnings) and not all(r64.warnings)
    # the masks are the rows each rule adjusted; rows changed are a subset of rows adjusted
    for rule, mask in r64.matched.items():
        assert mask.tolist() == [any(a["rule"] == rule for a in adj) for adj in r64.adjustments]
    changed = r64.paddle_score != r64.model_score
    assert not (changed & ~np.logical_or.reduce(list(r64.matched.values()))).any()
    lean = layer.apply_arrays(frame, scores, details=False)
    np.testing.assert_array_equal(lean.paddle_score, r64.paddle_score)
    assert lean.adjustments is None and lean.matched.keys() == r64.matched.keys()


def test_summary_shares():
    layer = SafetyLayer(_cfg("kaayko"))
    frame = pd.DataFrame([{**CALM, "gust_kph": 45.0}, {**CALM, "gust_kph": 45.0}, {**CALM, "vis_km": 0.5}, CALM])
    res = layer.apply_arrays(frame, [1.0, 4.0, 4.0, 4.0])  # row 0: gust rule matches, but 1.0 cannot go lower
    assert layer.summary(res) == {"name": "kaayko", "rows_changed_share": 0.5,
                                  "per_rule": {"gusts": 0.5, "cold_water": 0.0, "visibility": 0.25}}


def test_off_disables_everything():
    off = SafetyLayer(_cfg("off"))
    frame = _random_frame(200)
    scores = np.linspace(0.7, 5.3, len(frame))
    res = apply_safety(frame, scores, off)
    np.testing.assert_array_equal(res.paddle_score, np.clip(np.round(scores * 2) / 2, 1, 5))
    np.testing.assert_array_equal(res.paddle_score, res.model_score)
    assert res.warnings.tolist() == [[]] * len(frame) and res.adjustments.tolist() == [[]] * len(frame)
    assert off.columns == () and off.summary(res) == {"name": "off", "rows_changed_share": 0.0, "per_rule": {}}


# --------------------------------------------------------------------------- config
def test_thresholds_come_from_config():
    cfg = safety_config_dict(_cfg("kaayko"))
    cfg["rules"]["gusts"]["steps"][1]["value"] = 30.0  # stricter gust rule
    strict = SafetyLayer(cfg)
    assert strict.apply_one({**CALM, "gust_kph": 35.0}, 4.0).paddle_score == 3.5
    assert SafetyLayer(_cfg("kaayko")).apply_one({**CALM, "gust_kph": 35.0}, 4.0).paddle_score == 4.0


@pytest.mark.parametrize("name", ["kaayko", "kaayko_original", "off"])
def test_config_round_trips_through_json_dict(name):
    cfg = safety_config_dict(_cfg(name))
    assert set(cfg) == {"name", "enabled", "rules", "warnings"}
    assert SafetyLayer(json.loads(json.dumps(cfg))).to_dict() == cfg


@pytest.mark.parametrize("mutate, match", [
    (lambda c: c["rules"]["gusts"]["steps"][0].update(op="=="), "op"),
    (lambda c: c["rules"]["gusts"]["steps"][0].update(delta=-0.3), "multiples of 0.5"),
    (lambda c: c["rules"]["gusts"].update(steps=[]), "no steps"),
    (lambda c: c["rules"]["cold_water"]["when"][0].update(op="~"), r"when\[0\]\.op"),
    (lambda c: c["rules"]["cold_water"]["when"][0].update(value="warm"), r"when\[0\]\.value"),
])
def test_bad_config_is_a_config_error(mutate, match):
    cfg = safety_config_dict(_cfg("kaayko"))
    mutate(cfg)
    with pytest.raises(ConfigError, match=match):
        SafetyLayer(cfg)


def test_missing_safety_column_is_named(kaayko):
    frame = _random_frame(5).drop(columns=["vis_km"])
    with pytest.raises(PredictionInputError, match="vis_km"):
        apply_safety(frame, np.ones(5), kaayko)
    frame = _random_frame(5).drop(columns=["temp_c"])  # a gate's column is needed too
    with pytest.raises(PredictionInputError, match="temp_c"):
        apply_safety(frame, np.ones(5), kaayko)


# --------------------------------------------------------------------------- real rows
@pytest.fixture(scope="module")
def real_run(tmp_path_factory):
    """A tiny xgboost run trained on the real sample, the form a user types (relative data.path)."""
    from predict_helpers import train

    return train(tmp_path_factory.mktemp("real"), [
        "data=kaayko_csv", f"data.path={SAMPLE}", "sample_size=complete", "model=xgboost",
        "model.params.n_estimators=40", "checkpointing=off", f"evaluation.external={SAMPLE}"])


def test_default_layer_changes_far_fewer_real_rows_than_the_original(real_run, monkeypatch):
    from kaayko_exp import Predictor
    from kaayko_exp.data import read_table

    monkeypatch.chdir(ROOT)
    frame = read_table(SAMPLE, require_target=True)
    y = frame["paddle_score"].to_numpy(np.float64)
    shares = {}
    for name in ("kaayko", "kaayko_original"):
        out = Predictor.load(real_run, safety=_cfg(name)).predict(frame.drop(columns=["paddle_score", "skill_level"]))
        changed = (out["paddle_score"] != out["model_score"]).to_numpy()
        shares[name] = {"changed": changed.mean(), "model_accuracy": (out["model_score"] == y).mean(),
                        "final_accuracy": (out["paddle_score"] == y).mean()}
        assert all(out.loc[changed, "adjustments"].map(len) > 0)  # every changed row says why
    print(f"\nreal sample ({len(frame):,} rows): {shares}")
    assert shares["kaayko"]["changed"] < 0.5 * shares["kaayko_original"]["changed"]
    assert shares["kaayko"]["final_accuracy"] > shares["kaayko_original"]["final_accuracy"]

    # the run's report carries the same summary for its test and external sets (trained with safety=kaayko)
    report = json.loads((real_run / "report.json").read_text())
    for block in (report["test"], report["external"]):
        s = block["safety"]
        assert s["name"] == "kaayko" and set(s["per_rule"]) == {"gusts", "cold_water", "visibility"}
        assert 0.0 < s["rows_changed_share"] <= sum(s["per_rule"].values())  # a changed row matched a rule
    assert report["safety"] == report["test"]["safety"]
    ext = report["external"]["safety"]
    assert ext["rows_changed_share"] == pytest.approx(shares["kaayko"]["changed"])
    md = (real_run / "report.md").read_text()
    assert "model + safety layer `kaayko`" in md and "| rows changed by the safety layer |" in md
    assert f"gusts {100 * ext['per_rule']['gusts']:.1f} %" in md
