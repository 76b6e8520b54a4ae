"""bench/bench_transfer.py: the per-lake table, goal verdicts and the --json sections run_all renders."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from kaayko_exp.evaluation import transfer

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture()
def bench(monkeypatch):
    spec = importlib.util.spec_from_file_location("bench_transfer", ROOT / "bench" / "bench_transfer.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _result(lake: str, acc: float, mae: float) -> transfer.LakeResult:
    return transfer.LakeResult(lake=lake, rows=2184, train_rows=486920, excluded=1, class_accuracy=acc, mae=mae,
                               within_half=1.0, seconds=12.0)


def test_goal_verdicts_per_lake_and_in_the_notes(bench, monkeypatch, tmp_path):
    seen = {}

    def fake(real, *, size, seed, **_):
        seen["size"] = size
        # one lake meets both goals, one misses MAE only (0.0306 > 0.03), one misses accuracy only
        return [_result("A", 0.995, 0.02), _result("B", 0.9991, 0.0306), _result("C", 0.985, 0.01)]

    monkeypatch.setattr(transfer, "leave_one_lake_out", fake)
    monkeypatch.setattr(bench, "fidelity_section", lambda real, seed: {"heading": "fidelity", "intro": "",
                                                                        "header": [], "rows": [], "notes": []})
    out = tmp_path / "r.json"
    assert bench.main(["--json", str(out), "--families", ""]) == 0  # the per-family tables have their own test
    assert seen["size"] == "large"
    sec = json.loads(out.read_text())["sections"][0]
    assert sec["heading"] == "Leave-one-real-lake-out transfer (sample_size=large)"
    verdicts = {row[0]: row[sec["header"].index("goal")] for row in sec["rows"]}
    assert verdicts == {"A": "met", "B": "MISSED", "C": "MISSED"}
    assert sec["rows"][1][sec["header"].index("MAE")] == "0.0306"
    assert "MISSED on B, C." in sec["notes"][0]
    assert "class accuracy 0.9850, MAE 0.0306" in sec["notes"][1]


def test_quick_uses_tiny_and_says_so(bench, monkeypatch, tmp_path):
    monkeypatch.setattr(transfer, "leave_one_lake_out", lambda real, *, size, seed, **_: [_result(size, 1.0, 0.0)])
    monkeypatch.setattr(bench, "fidelity_section", lambda real, seed: {"heading": "fidelity", "intro": "",
                                                                        "header": [], "rows": [], "notes": []})
    out = tmp_path / "q.json"
    bench.main(["--quick", "--json", str(out)])
    sec = json.loads(out.read_text())["sections"][0]
    assert sec["rows"][0][0] == "tiny" and "met on all lakes." in sec["notes"][0]
    assert any("sample_size=tiny" in n for n in sec["notes"])


def test_fidelity_section_counts_passed_and_failed_checks(bench, monkeypatch):
    from kaayko_exp.data import fidelity

    def fake_run(real, *, out, seed, source):
        g = fidelity.GroupResult("lake: X", 10, 20, None, {}, {}, {}, {}, {},
                                 {"w:temp_c": (3.0, False), "w:uv": (0.1, True), "w:cloud": (1.0, True)})
        return [g], Path(out) / "report.md", []

    monkeypatch.setattr(fidelity, "run", fake_run)
    sec = bench.fidelity_section(None, 42)
    assert sec["rows"] == [["lake: X", "10", "20", 2, 1, "w:temp_c"]]
    assert sec["notes"] == ["1 check(s) failed."]


def test_family_tables_have_one_column_per_family_and_judge_the_goals(bench, monkeypatch):
    calls = []

    def lakes(real, *, size, seed, model, **_):
        calls.append(("lakes", model, size))
        acc = 0.998 if model == "histgb" else 1.0  # histgb misses the 0.999 leave-one-sample-lake-out goal
        return [_result("A", acc, 0.01), _result("B", 1.0, 0.02)]

    def climates(*, size, seed, model, **_):
        calls.append(("climates", model, size))
        return [transfer.ClimateResult(group="polar", station="Utqiagvik", koppen="ET", rows=8760, train_rows=100,
                                       class_accuracy=0.98 if model == "ensemble" else 0.995, mae=0.02,
                                       within_half=1.0, seconds=1.0)]

    monkeypatch.setattr(transfer, "leave_one_lake_out", lakes)
    monkeypatch.setattr(transfer, "leave_one_climate_out", climates)
    secs = bench.family_sections(None, {"xgboost": "large", "histgb": "large", "ensemble": "medium"}, 42,
                                 known={"xgboost": [transfer.asdict(_result("A", 1.0, 0.01)),
                                                    transfer.asdict(_result("B", 1.0, 0.02))]})
    loslo, locto = secs
    assert loslo["header"] == ["lake", "xgboost (large)", "histgb (large)", "ensemble (medium)"]
    assert loslo["rows"][0] == ["A", "1.0000 / 0.0100", "0.9980 / 0.0100", "1.0000 / 0.0100"]
    assert "MISSED by histgb" in loslo["notes"][0]
    assert ("lakes", "xgboost", "large") not in calls  # xgboost's results are reused, not recomputed
    assert locto["rows"][0][:3] == ["polar", "ET", "Utqiagvik"] and locto["rows"][0][5] == "0.9800 / 0.0200"
    assert "ET (ensemble)" in locto["notes"][0]
    assert ("climates", "ensemble", "medium") in calls


def test_keep_main_reuses_the_earlier_sections_and_the_family_tables_use_the_rule_features(bench, monkeypatch,
                                                                                            tmp_path):
    seen = []

    def lakes(real, *, size, seed, model, features="standard", **_):
        seen.append(("lakes", model, features))
        return [_result("A", 1.0, 0.01)]

    def climates(*, size, seed, model, features="standard", **_):
        seen.append(("climates", model, features))
        return [transfer.ClimateResult(group="polar", station="Utqiagvik", koppen="ET", rows=8760, train_rows=100,
                                       class_accuracy=1.0, mae=0.01, within_half=1.0, seconds=1.0)]

    monkeypatch.setattr(transfer, "leave_one_lake_out", lakes)
    monkeypatch.setattr(transfer, "leave_one_climate_out", climates)
    monkeypatch.setattr(bench, "fidelity_section", lambda *a: pytest.fail("fidelity re-run despite --keep-main"))
    earlier = tmp_path / "earlier.json"
    main_sec = {"heading": "Leave-one-real-lake-out transfer (sample_size=large)", "intro": "", "header": ["lake"],
                "rows": [["A"]], "notes": ["n"]}
    fid_sec = dict(main_sec, heading="Synthetic generator fidelity")
    family = dict(main_sec, heading="Leave-one-sample-lake-out by model family")
    earlier.write_text(json.dumps({"when": "2026-12-05 04:10", "command": "python bench/bench_transfer.py",
                                   "sections": [main_sec, fid_sec, family]}))
    out = tmp_path / "r.json"
    assert bench.main(["--keep-main", str(earlier), "--families", "xgboost", "--json", str(out)]) == 0
    secs = json.loads(out.read_text())["sections"]
    assert [s["heading"] for s in secs[:2]] == [main_sec["heading"], fid_sec["heading"]]
    assert secs[0]["rows"] == [["A"]] and "Kept from the run of 2026-12-05 04:10" in secs[0]["notes"][-1]
    assert seen == [("lakes", "xgboost", "rule"), ("climates", "xgboost", "rule")]  # recomputed, on features=rule
    assert "features=rule" in secs[2]["intro"] and "--features rule" in secs[3]["intro"]


def test_keep_main_carries_the_columns_of_the_families_not_re_run(bench, monkeypatch, tmp_path):
    seen = []

    def lakes(real, *, size, seed, model, features="standard", **_):
        seen.append(("lakes", model))
        return [_result("A", 0.9995, 0.004), _result("B", 1.0, 0.002)]

    def climates(*, size, seed, model, features="standard", **_):
        seen.append(("climates", model))
        return [transfer.ClimateResult(group="polar", station="Utqiagvik", koppen="ET", rows=8760, train_rows=100,
                                       class_accuracy=0.95, mae=0.01, within_half=1.0, seconds=1.0)]

    monkeypatch.setattr(transfer, "leave_one_lake_out", lakes)
    monkeypatch.setattr(transfer, "leave_one_climate_out", climates)
    keep = {"heading": "Leave-one-real-lake-out transfer (sample_size=large)", "intro": "", "header": ["lake"],
            "rows": [["A"]], "notes": []}
    loslo = {"heading": "Leave-one-sample-lake-out by model family", "intro": "", "notes": [],
             "header": ["lake", "xgboost (large)", "histgb (medium)"],
             "rows": [["A", "0.9000 / 0.0900", "1.0000 / 0.0010"], ["B", "0.9000 / 0.0900", "0.9980 / 0.0020"],
                      ["**worst**", "0.9000 / 0.0900", "0.9980 / 0.0020"]]}
    locto = {"heading": "Leave-one-climate-type-out by model family", "intro": "", "notes": [],
             "header": ["group left out", "Köppen", "reference station", "xgboost (large)", "histgb (medium)"],
             "rows": [["polar", "ET", "Utqiagvik", "0.9000 / 0.0900", "1.0000 / 0.0300"],
                      ["**worst**", "", "", "0.9000 / 0.0900", "1.0000 / 0.0300"]]}
    earlier = tmp_path / "earlier.json"
    earlier.write_text(json.dumps({"when": "w", "command": "c", "sections": [keep, dict(keep, heading="Synthetic "
                                                                                       "generator fidelity"),
                                                                          loslo, locto]}))
    out = tmp_path / "r.json"
    assert bench.main(["--keep-main", str(earlier), "--families", "xgboost", "--json", str(out)]) == 0
    assert seen == [("lakes", "xgboost"), ("climates", "xgboost")]  # histgb not re-run
    secs = json.loads(out.read_text())["sections"]
    assert secs[2]["header"] == ["lake", "xgboost (large)", "histgb (medium)"]
    assert secs[2]["rows"] == [["A", "0.9995 / 0.0040", "1.0000 / 0.0010"], ["B", "1.0000 / 0.0020", "0.9980 / 0.0020"],
                               ["**worst**", "0.9995 / 0.0040", "0.9980 / 0.0020"]]
    assert "MISSED by histgb" in secs[2]["notes"][0] and "not re-run: histgb" in secs[2]["notes"][-1]
    assert secs[3]["rows"][0] == ["polar", "ET", "Utqiagvik", "0.9500 / 0.0100", "1.0000 / 0.0300"]
    assert "ET (xgboost)" in secs[3]["notes"][0] and "ET (histgb)" not in secs[3]["notes"][0]
