"""Issue 19: station rows from published statistics, and the leave-one-climate-type-out protocol (tiny sizes)."""

from __future__ import annotations

import numpy as np
import pytest
import pandas as pd

from kaayko_exp.data import coverage, koppen, label, station_hours, validate_frame
from kaayko_exp.evaluation import transfer


def test_station_rows_follow_the_published_normals_and_the_physics():
    st = next(s for s in koppen.STATIONS if s.koppen == "Cwa")
    rows = station_hours.station_rows(st, seed=3)
    assert len(rows) == 8760 and rows["lake"].nunique() == 1
    validate_frame(rows, "station rows")
    monthly = rows.groupby("month")["temp_c"].mean()
    normal = (np.array(st.tmax) + np.array(st.tmin)) / 2
    assert np.abs(monthly.to_numpy() - normal).max() < 2.0  # within 2 °C of the normals' monthly mean
    assert np.abs(rows.groupby("month")["wind_kph"].mean().to_numpy() - np.array(st.wind)).max() < 2.5
    assert rows["dew_point_c"].max() <= st.dew_max and rows["temp_c"].max() <= st.record_high
    assert coverage.row_violations(rows) == {"dew > temp": 0, "gust < wind": 0, "humidity off Magnus": 0,
                                             "uv at night": 0}
    np.testing.assert_array_equal(rows["paddle_score"].to_numpy(), label.paddle_score_rule(rows))
    pd.testing.assert_frame_equal(rows, station_hours.station_rows(st, seed=3))
    assert not rows["temp_c"].equals(station_hours.station_rows(st, seed=4)["temp_c"])


def spy_on_training_lakes(monkeypatch) -> dict:
    """The lakes of the rows the next transfer fit trains on (``seen["lakes"]``)."""
    seen = {}
    real_fit = transfer._fit

    def spy(train, **kw):
        seen["lakes"] = set(train["lake"].astype(str))
        return real_fit(train, **kw)

    monkeypatch.setattr(transfer, "_fit", spy)
    return seen


def test_leave_one_climate_type_out_at_tiny_size(monkeypatch):
    seen = spy_on_training_lakes(monkeypatch)
    results = transfer.leave_one_climate_out(["polar"], size="tiny", seed=1, model="xgboost", n_jobs=1)
    assert [(r.group, r.koppen, r.station) for r in results] == [("polar", "ET", "Utqiagvik")]
    r = results[0]
    assert r.rows == 8760 and r.train_rows == 3000
    assert 0.0 <= r.class_accuracy <= 1.0 and 0.0 <= r.mae < 4.0
    assert "Utqiagvik (ET)" not in seen["lakes"] and "Lake Hazen" not in seen["lakes"]  # the group was left out
    assert any(name.endswith("(Dfc)") for name in seen["lakes"])  # other climates' coverage rows were kept
    table = transfer.climate_table(results)
    assert "| polar | ET | Utqiagvik | 8,760 | 3,000 |" in table


def test_lake_protocol_without_real_rows_is_a_usage_error(capsys):
    assert transfer.main(["--size", "tiny"]) == 2
    assert "needs the real rows" in capsys.readouterr().err


def test_rule_feature_set_reads_exactly_the_label_rules_inputs():
    """features=rule: the model reads what the published rule reads and nothing else (no place/climate proxy)."""
    from omegaconf import OmegaConf

    from kaayko_exp.data import synthetic
    from kaayko_exp.features.spec import build_spec

    frame = synthetic.generate_rows(np.arange(0, 2_000_000, 1000), seed=5)
    spec = build_spec(OmegaConf.load(transfer.CONF / "features" / "rule.yaml"), frame)
    cols = list(spec.required_columns)
    # the rule scores a frame of these columns alone exactly as the full frame ...
    np.testing.assert_array_equal(label.paddle_score_rule(frame[cols]), frame["paddle_score"].to_numpy())
    # ... and needs every one of them
    for c in cols:
        with pytest.raises(KeyError):
            label.paddle_score_rule(frame[[k for k in cols if k != c]])
    assert not {"latitude", "longitude", "region", "regional_pattern", "lake_type", "hemisphere", "feelslike_c",
                "estimated_water_temp_c", "month", "datetime"} & set(cols)


def test_synthetic_climate_validation_scores_the_groups_own_synthetic_rows(monkeypatch):
    """The settings validation never reads the scored station rows, and trains without the group it scores."""
    from kaayko_exp.data import synthetic

    seen = spy_on_training_lakes(monkeypatch)

    def no_station_rows(*a, **k):
        raise AssertionError("the validation read the scored station rows")

    monkeypatch.setattr(station_hours, "station_rows", no_station_rows)
    [r] = transfer.synthetic_climate_validation(["polar"], size="tiny", seed=1, model="random_forest",
                                                features="rule", params={"n_estimators": 5}, n_jobs=1,
                                                val_rows=20_000)
    full, kept = synthetic.layout(), synthetic.layout(exclude_group="polar")
    held = set(full.lakes["name"]) - set(kept.lakes["name"])
    assert held and not held & seen["lakes"] and "Utqiagvik (ET)" not in seen["lakes"]
    assert r.group == "polar" and r.rows > 0 and r.train_rows == 3000 and 0.0 <= r.class_accuracy <= 1.0


def test_protocols_train_on_samples_drawn_as_training_draws_them(monkeypatch):
    """Their training samples take data.global_share of conf/data/synthetic.yaml from the global rows, as
    `python train.py` does; --global-share null draws uniformly (the component's 10 % of the table)."""
    from omegaconf import OmegaConf

    from kaayko_exp.data import synthetic

    names = set(synthetic.layout().global_places["name"])
    share = float(OmegaConf.load(transfer.CONF / "data" / "synthetic.yaml").global_share)
    shares = []
    real_fit = transfer._fit

    def spy(train, **kw):
        shares.append(train["lake"].astype(str).isin(names).mean())
        return real_fit(train, **kw)

    monkeypatch.setattr(transfer, "_fit", spy)
    transfer.leave_one_climate_out(["polar"], size="tiny", seed=1, model="rule", n_jobs=1)
    transfer.leave_one_climate_out(["polar"], size="tiny", seed=1, model="rule", n_jobs=1, global_share=None)
    assert shares[0] == pytest.approx(share, abs=1e-3)
    assert shares[1] == pytest.approx(synthetic.global_rows() / synthetic.complete_rows(), abs=0.03)


@pytest.mark.parametrize("bad", ["2", "half"])
def test_a_bad_global_share_is_refused_before_anything_trains(capsys, bad):
    with pytest.raises(SystemExit) as exc:
        transfer.main(["--protocol", "climates", "--global-share", bad])
    assert exc.value.code == 2
    assert "must be a number from 0 to 1" in capsys.readouterr().err
