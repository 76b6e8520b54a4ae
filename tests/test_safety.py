"""The post-model safety layer: thresholds from conf/safety, vectorised == single-row, off."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf

from kaayko_exp.config import SafetyConfig
from kaayko_exp.errors import ConfigError, PredictionInputError
from kaayko_exp.serving.safety import SafetyLayer, apply_safety, safety_config_dict

CONF = Path(__file__).resolve().parents[1] / "conf" / "safety"

CALM = dict(temp_c=22.0, wind_kph=10.0, gust_kph=12.0, estimated_wave_height_m=0.2,
            estimated_water_temp_c=18.0, vis_km=10.0, precip_mm=0.0, uv=5.0)


def _cfg(name: str):
    return OmegaConf.merge(OmegaConf.structured(SafetyConfig), OmegaConf.load(CONF / f"{name}.yaml"))


@pytest.fixture(scope="module")
def kaayko():
    return SafetyLayer(_cfg("kaayko"))


def _one(layer, score=4.2, **changes):
    row = {**CALM, **changes}
    return layer.apply_one(row, score)


def test_calm_row_keeps_model_score(kaayko):
    safe, warnings, reasons = _one(kaayko, 4.2)
    assert (safe, warnings, reasons) == (4.0, [], [])


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
def test_each_rule_threshold(kaayko, changes, delta):
    safe, _, reasons = _one(kaayko, 4.0, **changes)
    assert safe == 4.0 + delta
    assert bool(reasons) == (delta != 0)


def test_adjustments_add_up_and_clip(kaayko):
    # -2 (wind) -1 (gust) -0.5 (waves) -1 (rain): 4.0 - 4.5 -> clipped to 1
    safe, _, reasons = _one(kaayko, 4.0, wind_kph=45.0, gust_kph=56.0, estimated_wave_height_m=1.0, precip_mm=7.0)
    assert safe == 1.0 and len(reasons) == 4
    safe, _, _ = _one(kaayko, 4.4, precip_mm=2.5)  # 4.4 - 0.5 = 3.9 -> 4.0 on the 0.5 grid
    assert safe == 4.0


@pytest.mark.parametrize("changes, expected", [
    ({"temp_c": -5.0}, ["Extreme cold"]), ({"temp_c": 0.0}, ["Freezing"]), ({"temp_c": 0.1}, []),
    ({"wind_kph": 60.0, "gust_kph": 60.0}, ["Dangerous wind"]),
    ({"wind_kph": 40.0, "gust_kph": 40.0}, ["Strong wind"]),
    ({"precip_mm": 10.1}, ["Heavy rain"]), ({"precip_mm": 10.0}, []),
    ({"vis_km": 0.9}, ["Fog"]),
    ({"temp_c": -6.0, "vis_km": 0.5, "precip_mm": 12.0}, ["Extreme cold", "Heavy rain", "Fog"]),
])
def test_warnings(kaayko, changes, expected):
    _, warnings, _ = _one(kaayko, 3.0, **changes)
    assert [w.split(":")[0] for w in warnings] == expected


def _random_frame(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    wind = rng.choice(np.round(np.arange(0, 80, 0.1), 1), n)
    frame = pd.DataFrame({
        "temp_c": rng.choice(np.round(np.arange(-10, 42, 0.1), 1), n),
        "wind_kph": wind,
        "gust_kph": np.round(wind + rng.choice(np.round(np.arange(0, 15, 0.1), 1), n), 1),
        "estimated_wave_height_m": np.minimum(0.0016 * wind ** 1.2, 3.0),
        "estimated_water_temp_c": rng.choice(np.round(np.arange(0, 30, 0.1), 1), n),
        "vis_km": rng.choice([0.5, 1.0, 4.0, 5.0, 9.0, 10.0], n),
        "precip_mm": rng.choice([0.0, 0.5, 2.0, 5.9, 6.0, 11.0], n),
        "uv": rng.choice(np.arange(0, 12, 1.0), n),
    })
    return frame


def test_vectorised_equals_single_row_including_float32_storage(kaayko):
    frame = _random_frame(3000)
    scores = np.random.default_rng(1).uniform(0.5, 5.5, len(frame))
    safe64, warn64 = apply_safety(frame, scores, kaayko)
    # parquet stores these columns as float32: thresholds must not flip (e.g. gust - wind == 10)
    f32 = frame.astype({c: "float32" for c in frame.columns if c != "estimated_wave_height_m"})
    safe32, warn32 = apply_safety(f32, scores, kaayko)
    np.testing.assert_array_equal(safe64, safe32)
    assert warn64 == warn32
    for i in range(0, len(frame), 7):
        row = {k: float(v) for k, v in frame.iloc[i].items()}
        safe, warnings, _ = kaayko.apply_one(row, scores[i])
        assert safe == safe64[i] and warnings == warn64[i]
    assert safe64.min() >= 1.0 and safe64.max() <= 5.0
    assert np.all(safe64 * 2 == np.round(safe64 * 2))
    assert any(warn64) and not all(warn64)


def test_off_disables_everything():
    off = SafetyLayer(_cfg("off"))
    frame = _random_frame(200)
    scores = np.linspace(0.7, 5.3, len(frame))
    safe, warnings = apply_safety(frame, scores, off)
    np.testing.assert_array_equal(safe, np.clip(np.round(scores * 2) / 2, 1, 5))
    assert warnings == [[] for _ in range(len(frame))]
    assert off.columns == ()


def test_thresholds_come_from_config():
    cfg = safety_config_dict(_cfg("kaayko"))
    cfg["rules"]["uv"]["steps"][1]["value"] = 5.0  # stricter UV rule
    strict = SafetyLayer(cfg)
    assert strict.apply_one({**CALM, "uv": 6.0}, 4.0)[0] == 3.5
    assert SafetyLayer(_cfg("kaayko")).apply_one({**CALM, "uv": 6.0}, 4.0)[0] == 4.0


def test_config_round_trips_through_json_dict():
    cfg = safety_config_dict(_cfg("kaayko"))
    assert set(cfg) == {"name", "enabled", "rules", "warnings"}
    assert SafetyLayer(cfg).to_dict() == cfg


@pytest.mark.parametrize("mutate, match", [
    (lambda c: c["rules"]["uv"]["steps"][0].update(op="=="), "op"),
    (lambda c: c["rules"]["uv"]["steps"][0].update(delta=-0.3), "multiples of 0.5"),
    (lambda c: c["rules"]["uv"].update(steps=[]), "no steps"),
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
