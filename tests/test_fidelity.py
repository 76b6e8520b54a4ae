"""The fidelity report: distances on hand-made tables with known answers, thresholds, the CLI."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kaayko_exp.data import fidelity
from kaayko_exp.data.sources import read_table

SAMPLE = "tests/data/kaayko_sample"


def _table(n: int = 48, shift: float = 0.0) -> pd.DataFrame:
    """A small hand-made table: two days of one lake, every column the comparison reads."""
    hours = np.arange(n)
    return pd.DataFrame({
        "lake": "Test Lake",
        "datetime": pd.Timestamp("2023-07-01") + pd.to_timedelta(hours, unit="h"),
        "month": 7,
        "temp_c": 20.0 + 5.0 * np.sin(hours / 24 * 2 * np.pi) + shift,
        "dew_point_c": 10.0 + 0.0 * hours,
        "humidity": 50 + hours % 3,
        "feelslike_c": 20.0 + 5.0 * np.sin(hours / 24 * 2 * np.pi) + shift,
        "wind_kph": 4.0 + (hours % 12),
        "gust_kph": 8.0 + (hours % 12),
        "cloud": (hours * 7) % 101,
        "uv": np.where(hours % 24 >= 12, 0.0, 3.0),
        "is_day": (hours % 24 < 12).astype(int),
        "precip_mm": np.where(hours % 8 == 0, 0.5, 0.0),
        "condition": np.where(hours % 8 == 0, "Patchy rain possible", "Sunny"),
        "pressure_mb": 1013.0, "vis_km": 10.0,
        "paddle_score": 3.0 + 0.5 * (hours % 4),
        "season": "summer", "season_intensity": "mid", "hemisphere": "northern",
        "climate_zone": "temperate", "regional_pattern": "varied",
    })


def test_identical_tables_have_zero_distances_and_pass_every_check():
    a = _table()
    g = fidelity.compare_group("same", a, a.copy())
    assert (g.columns["ks"] == 0).all() and (g.columns["wasserstein"] == 0).all()
    assert all(v == 0 for v in g.relations_w.values())
    assert all(v == 0 for v in g.points_tv.values())
    assert all(v == 0 for v in g.calendar.values()) and g.cycles["temp_c"] == pytest.approx(0.0)
    assert all(ok for _, ok in g.checks.values()) and fidelity.failures([g]) == []


def test_a_shifted_column_has_wasserstein_equal_to_the_shift():
    a, b = _table(), _table(shift=3.0)
    g = fidelity.compare_group("shifted", a, b)
    assert g.columns.loc["temp_c", "wasserstein"] == pytest.approx(3.0)
    assert g.columns.loc["feelslike_c", "wasserstein"] == pytest.approx(3.0)
    assert g.columns.loc["wind_kph", "wasserstein"] == 0.0
    # Temperature and dew point moved apart by 3 °C; feels-like minus air temperature did not change.
    assert g.relations_w["dew_depression"] == pytest.approx(3.0)
    assert g.relations_w["feels_minus_temp"] == pytest.approx(0.0, abs=1e-9)
    # The mean daily cycle is taken about its own mean: a constant shift is no cycle gap.
    assert g.cycles["temp_c"] == pytest.approx(0.0, abs=1e-9)
    # 3 °C > the 2.5 °C threshold: exactly that check (and no wind check) fails.
    failed = fidelity.failures([g])
    assert any("w:temp_c = 3.000 > 2.5" in f for f in failed)
    assert not any("wind" in f for f in failed)


def test_known_ks_and_total_variation():
    ks, w = fidelity.distances(np.array([0.0, 1.0]), np.array([10.0, 11.0]))
    assert ks == 1.0 and w == 10.0
    assert fidelity.total_variation(["a", "a", "b", "b"], ["a", "a", "a", "a"]) == pytest.approx(0.5)
    assert np.isnan(fidelity.distances(np.array([]), np.array([1.0]))[0])


def test_calendar_disagreement_counts_rows_with_another_season():
    a = _table()
    b = a.copy()
    b["season"] = "autumn"
    g = fidelity.compare_group("calendar", a, b)
    assert g.calendar["season"] == 1.0 and g.calendar["hemisphere"] == 0.0
    assert g.checks["calendar_disagreement"] == (1.0, False)


def test_rule_points_follow_the_rule_bins():
    df = pd.DataFrame({"temp_c": [22.0, 19.0, 5.0], "wind_kph": [10.0, 3.0, 45.0], "precip_mm": [0.0, 0.5, 9.0],
                       "cloud": [10, 50, 90], "uv": [9.0, 0.0, 1.0]})
    p = fidelity.rule_points(df)
    assert p["temp_points"].tolist() == [1, 0.5, -2]
    assert p["wind_points"].tolist() == [0.5, 0, -2]
    assert p["rain_points"].tolist() == [0.5, 0, -1.5]
    assert p["cloud_points"].tolist() == [0.2, 0, -0.2]
    assert p["uv_points"].tolist() == [-0.5, 0, 0]


@pytest.mark.slow  # the suite's time budget; test_synthetic_climate's fidelity checks on the real sample stay fast
def test_cli_writes_report_and_figures_for_every_lake(tmp_path):
    real = read_table(SAMPLE)
    out = tmp_path / "fid"
    code = fidelity.main([SAMPLE, "--out", str(out), "--json", str(tmp_path / "fid.json")])
    report = (out / "report.md").read_text()
    for lake in real["lake"].astype(str).unique():
        assert f"lake: {lake}" in report
    for fig in ("histograms_by_lake.png", "daily_cycles.png", "seasonal_and_classes.png"):
        assert (out / fig).stat().st_size > 1000 and f"({fig})" in report
    import json

    payload = json.loads((tmp_path / "fid.json").read_text())
    assert code == (1 if payload["failures"] else 0)
    # Calendar fields of the synthetic twins equal the real sample's for every lake and month.
    for name, checks in payload["checks"].items():
        if name.startswith("lake:"):
            assert checks["calendar_disagreement"]["value"] == 0.0, name


def test_cli_missing_path_exits_2(tmp_path, capsys):
    assert fidelity.main([str(tmp_path / "nope"), "--out", str(tmp_path / "o")]) == 2
    assert "does not exist" in capsys.readouterr().err


# ----------------------------------------------------------------------------- leave-one-lake-out
def test_layout_can_exclude_a_lake_and_its_neighbours():
    from kaayko_exp.data import synthetic
    from kaayko_exp.data.catalogue import _km

    full = synthetic.layout()
    mead = full.lakes[full.lakes["name"] == "Lake Mead"].iloc[0]
    lay = synthetic.layout(synthetic.DEFAULT_TOTAL_ROWS, synthetic.DEFAULT_LAKES,
                           (("Lake Mead", float(mead["lat"]), float(mead["lng"])),))
    assert "Lake Mead" not in set(lay.lakes["name"]) and len(lay.lakes) < len(full.lakes)
    near = _km(float(mead["lat"]), float(mead["lng"]), lay.lakes["lat"].to_numpy(), lay.lakes["lng"].to_numpy())
    assert near.min() > synthetic.EXCLUDE_RADIUS_KM
    assert lay.offsets[-1] == synthetic.DEFAULT_TOTAL_ROWS
    # Coordinates alone exclude too (a user's lake under another name).
    by_place = synthetic.layout(synthetic.DEFAULT_TOTAL_ROWS, synthetic.DEFAULT_LAKES,
                                (("Some Other Name", float(mead["lat"]) + 0.01, float(mead["lng"])),))
    assert "Lake Mead" not in set(by_place.lakes["name"])
    # Without exclusion nothing changes (keys are the full list's places).
    assert full.lakes["key"].tolist() == list(range(len(full.lakes)))


def test_leave_one_lake_out_on_tiny_sizes():
    from kaayko_exp.evaluation import transfer

    real = read_table(SAMPLE)
    real = real[real["lake"].astype(str).isin(["Lake Mead", "Windermere"])]
    results = transfer.leave_one_lake_out(real, size=3000, seed=3, params={"n_estimators": 30})
    assert [r.lake for r in results] == ["Lake Mead", "Windermere"]
    for r in results:
        assert r.rows == int((real["lake"].astype(str) == r.lake).sum()) and r.train_rows == 3000
        assert r.excluded >= 1 and 0.0 <= r.class_accuracy <= 1.0 and r.mae >= 0
        assert r.class_accuracy > 0.3  # a model, not noise: the constant-mode baseline scores < 0.3 here
    train = transfer.synthetic_without((transfer.lake_exclusion(real[real["lake"] == "Lake Mead"]),), 3000, 3)
    assert "Lake Mead" not in set(train["lake"].astype(str))
    md = transfer.markdown_table(results)
    assert "| Lake Mead | 2,184 | 3,000 |" in md and "**worst**" in md


def test_cli_puts_the_transfer_results_in_the_report(tmp_path):
    import json

    row = {"lake": "Lake Mead", "rows": 2184, "train_rows": 48692, "excluded": 1, "class_accuracy": 0.9217,
           "mae": 0.0907, "within_half": 0.9679, "seconds": 3.0}
    (tmp_path / "t.json").write_text(json.dumps([row]))
    one_month = tmp_path / "real" / "Lake_Mead"  # one lake, one month: the report's transfer section is what counts
    one_month.mkdir(parents=True)
    (one_month / "2019-04.csv").write_bytes((Path(SAMPLE) / "Lake_Mead" / "2019-04.csv").read_bytes())
    fidelity.main([str(one_month.parent), "--out", str(tmp_path / "o"), "--transfer-json", str(tmp_path / "t.json")])
    report = (tmp_path / "o" / "report.md").read_text()
    assert "## Leave-one-real-lake-out transfer" in report
    assert "| Lake Mead | 2,184 | 48,692 | 1 | 0.9217 | 0.0907 | 0.9679 |" in report
