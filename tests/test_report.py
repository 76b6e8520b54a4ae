"""report.json / report.md / plots from a hand-built run directory and a fake ``results`` dict."""

from __future__ import annotations

import json
import math

import sys

import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf

from kaayko_exp.evaluation.report import (
    REPORT_JSON,
    REPORT_MD,
    build_report,
    lake_rows,
    render_markdown,
    write_report,
)
from kaayko_exp.runs.rundir import RunDir
from kaayko_exp.training.pipeline import STAGES

PNG = b"\x89PNG\r\n\x1a\n"
METRIC_KEYS = ("mae", "rmse", "r2", "class_accuracy", "within_half", "skill_accuracy")
TOP_KEYS = {"schema_version", "kind", "run_id", "created", "choices", "config", "params", "data", "split", "model",
            "metrics", "metrics_after_safety", "safety", "baselines", "test", "val", "train_in_sample", "cv",
            "external", "importance", "timings", "packages", "objective", "plots", "rule_baseline_by_construction",
            "test_set", "sampling"}


def _metrics(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    err = p - y
    cls = np.clip(np.round(p * 2) / 2, 1, 5)
    var = float(np.sum((y - y.mean()) ** 2))
    return {"mae": float(np.mean(np.abs(err))), "rmse": float(np.sqrt(np.mean(err ** 2))),
            "r2": 1 - float(np.sum(err ** 2)) / var if var else float("nan"),
            "class_accuracy": float(np.mean(cls == y)), "within_half": float(np.mean(np.abs(err) <= 0.5)),
            "skill_accuracy": float(np.mean((cls >= 3.5) == (y >= 3.5)))}


@pytest.fixture
def run_and_results(tmp_path):
    rng = np.random.default_rng(3)
    n = 400
    lakes = np.array(["Big_Lake"] * 200 + ["Mid_Lake"] * 120 + ["Tiny_Pond"] * 80)
    y = np.clip(np.round(rng.normal(3.5, 0.8, n) * 2) / 2, 1, 5)
    p = y + rng.normal(0, 0.3, n)
    run = RunDir.create(tmp_path / "run", stages=STAGES, config_hash="abc",
                        choices={"model": "xgboost", "features": "standard", "split": "lakes", "sample_size": "small"},
                        overrides=["model=xgboost"])
    run.manifest["data"] = {"source": "synthetic", "path": None, "rows": 2000, "fingerprint": "f" * 64}
    details = {"dataset": {"info": {"source": "synthetic", "rows": 2000}},
               "split": {"sizes": {"train": 1400, "val": 200, "test": n}, "description": {"test_lakes": 3}},
               "fit": {"model_family": "xgboost"}}
    for i, stage in enumerate(STAGES[:5]):
        run.start_stage(stage)
        run.finish_stage(stage, 0.5 + i, details.get(stage))
    run.start_stage("report")
    (run.path / "predictions").mkdir()
    pd.DataFrame({"lake": lakes, "temp_c": rng.normal(20, 4, n), "paddle_score": y, "prediction": p}).to_parquet(
        run.path / "predictions" / "test.parquet")
    per_lake = [{"lake": name, "n": int((lakes == name).sum()), **_metrics(y[lakes == name], p[lakes == name])}
                for name in ("Tiny_Pond", "Big_Lake", "Mid_Lake")]
    per_lake[0]["r2"] = float("nan")
    test_m = _metrics(y, p)
    results = {
        "test": {"n": n, "metrics": test_m, "metrics_after_safety": _metrics(y, np.minimum(p, 4.5)),
                 "per_lake": per_lake,
                 "baselines": {"rule": {"metrics": _metrics(y, y)}, "constant_mean": _metrics(y, np.full(n, 3.4))}},
        "val": {"n": 200, "metrics": _metrics(y[:200], p[:200])},
        "train_in_sample": {"n": 1400, "metrics": _metrics(y, y + 0.01), "note": "in-sample"},
        "cv": {"k": 3, "folds": [{"fold": i, "metrics": test_m, "n_train": 900, "n_val": 450} for i in range(3)],
               "mean": test_m, "std": {k: 0.0123 for k in test_m}},
        "importance": {"model": {"wind_kph": 0.6, "gust_kph": 0.3, "temp_c": 0.1},
                       "permutation": {"wind_kph": {"mean": 0.41, "std": 0.02}, "temp_c": {"mean": 0.05, "std": 0.01}}},
        "objective": {"name": "test_rmse", "value": test_m["rmse"]},
    }
    cfg = OmegaConf.create({"seed": 7, "plots": True, "model": {"name": "xgboost", "params": {"max_depth": 4,
                            "depth_copy": "${model.params.max_depth}"}}, "split": {"name": "lakes"}})
    return run, cfg, results


def test_report_states_what_was_sampled(run_and_results):
    run, cfg, results = run_and_results
    results = {**results,
               "train_in_sample": {"n": 1000, "rows": 1400, "sampled": True, "metrics": results["val"]["metrics"],
                                   "note": "in-sample"},
               "importance": {**results["importance"], "permutation_rows": 300, "permutation_repeats": 2},
               "sampling": {"train_in_sample": {"rows": 1000, "of": 1400},
                            "permutation_importance": {"rows": 300, "of": 400, "repeats": 2, "seed": 7}}}
    report = build_report(run, cfg, results, plots=["plots/predicted_vs_actual.png"])
    assert report["sampling"]["train_in_sample"] == {"rows": 1000, "of": 1400}
    assert report["sampling"]["permutation_importance"] == {"rows": 300, "of": 400, "repeats": 2, "seed": 7}
    assert report["sampling"]["plots"] == {"predicted_vs_actual": {"rows": 400, "of": 400}}  # under the cap
    assert report["importance"]["permutation_rows"] == 300 and report["importance"]["permutation_repeats"] == 2
    assert report["train_in_sample"]["rows"] == 1400 and report["train_in_sample"]["sampled"] is True
    md = render_markdown(report)
    assert "1,000 of 1,400 training rows (seeded sample), in-sample" in md
    assert "seeded sample of 300 of the 400 test rows, 2 shuffles per feature" in md
    without = build_report(run, cfg, results, plots=[])
    assert "plots" not in without["sampling"]


def test_write_report_writes_schema_plots_and_markdown(run_and_results):
    run, cfg, results = run_and_results
    paths = write_report(run, cfg, results)
    names = sorted(p.name for p in paths)
    assert names == sorted(["predicted_vs_actual.png", "residuals_by_lake.png", "feature_importance.png",
                            "confusion_matrix.png", REPORT_MD, REPORT_JSON])
    for p in paths:
        assert p.is_file() and p.parent.resolve() in (run.path.resolve(), (run.path / "plots").resolve())
        if p.suffix == ".png":
            assert p.read_bytes()[:8] == PNG and p.stat().st_size > 5000
    assert not [f for f in run.path.rglob(".*.tmp")], "no temporary files left behind"

    def no_nan(token):
        raise AssertionError(f"report.json must be strict JSON, found {token}")

    report = json.loads((run.path / REPORT_JSON).read_text(), parse_constant=no_nan)
    assert set(report) == TOP_KEYS
    assert report["schema_version"] == 1 and report["kind"] == "kaayko-exp-report"
    assert report["run_id"] == run.manifest["run_id"]
    assert report["choices"]["model"] == "xgboost" and report["choices"]["sample_size"] == "small"
    assert report["config"]["model"]["params"]["depth_copy"] == 4  # resolved interpolation
    assert report["params"] == {"max_depth": 4, "depth_copy": 4}
    assert report["model"] == {"name": "xgboost", "family": "xgboost"}
    assert report["data"]["rows"] == 2000 and report["data"]["info"] == {"source": "synthetic", "rows": 2000}
    assert report["split"]["sizes"] == {"train": 1400, "val": 200, "test": 400}
    assert report["metrics"] == pytest.approx(results["test"]["metrics"])
    assert set(report["metrics"]) == set(METRIC_KEYS)
    assert report["metrics_after_safety"] == pytest.approx(results["test"]["metrics_after_safety"])
    assert set(report["baselines"]) == {"rule", "constant_mean"}
    assert report["baselines"]["rule"]["rmse"] == 0.0  # flattened from {"metrics": ...}
    assert report["baselines"]["constant_mean"]["rmse"] > report["metrics"]["rmse"]
    assert report["test"]["per_lake"][0]["lake"] == "Tiny_Pond" and report["test"]["per_lake"][0]["r2"] is None
    assert report["train_in_sample"]["n"] == 1400 and report["val"]["n"] == 200
    assert report["cv"]["k"] == 3 and len(report["cv"]["folds"]) == 3
    assert report["external"] is None
    assert report["importance"]["model"]["wind_kph"] == 0.6
    assert report["timings"]["fit"] == pytest.approx(3.5) and report["timings"]["report"] > 0
    assert report["timings"]["total"] == pytest.approx(sum(v for k, v in report["timings"].items() if k != "total"))
    assert "export" not in report["timings"]
    assert report["packages"] == run.manifest["package"]
    assert report["objective"] == {"name": "test_rmse", "value": pytest.approx(results["test"]["metrics"]["rmse"])}
    assert sorted(report["plots"]) == sorted(f"plots/{n}" for n in names if n.endswith(".png"))

    md = (run.path / REPORT_MD).read_text()
    assert md.startswith(f"# kaayko-exp run `{run.manifest['run_id']}`")
    m, rule, const = results["test"]["metrics"], results["test"]["baselines"]["rule"]["metrics"], \
        results["test"]["baselines"]["constant_mean"]
    rmse_row = next(line for line in md.splitlines() if line.startswith("| RMSE |"))
    cells = [c.strip() for c in rmse_row.strip("|").split("|")]
    safe = results["test"]["metrics_after_safety"]
    assert cells == ["RMSE", f"**{m['rmse']:.4f}**", f"{safe['rmse']:.4f}", f"{rule['rmse']:.4f}",
                     f"{const['rmse']:.4f}"]
    for label in ("| MAE |", "| R² |", "| class accuracy |", "| within ±0.5 |", "| skill accuracy |"):
        assert label in md
    assert f"{m['rmse']:.4f} ± 0.0123" in md  # CV mean ± std
    assert "in-sample, optimistic" in md
    assert md.index("Big_Lake") < md.index("Mid_Lake") < md.index("Tiny_Pond")  # per-lake: most rows first
    assert "`wind_kph`" in md and "0.4100 ± 0.0200" in md
    for plot in report["plots"]:
        assert f"]({plot})" in md and (run.path / plot).is_file()
    assert "| fit | 3.50 |" in md
    assert f"| xgboost | {run.manifest['package']['xgboost']} |" in md


def test_report_without_plots_and_with_external_set(run_and_results):
    run, cfg, results = run_and_results
    cfg.plots = False
    ext_m = dict(results["test"]["metrics"], rmse=0.987654)
    results["external"] = {"path": "/data/real_lakes", "n": 55, "metrics": ext_m,
                           "per_lake": {"Real_Lake": {"n": 55, "metrics": ext_m}},
                           "baselines": results["test"]["baselines"]}
    results["importance"]["model"] = None
    paths = write_report(run, cfg, results)
    assert sorted(p.name for p in paths) == [REPORT_JSON, REPORT_MD]
    assert not (run.path / "plots").exists()
    report = json.loads((run.path / REPORT_JSON).read_text())
    assert report["plots"] == [] and report["external"]["n"] == 55
    md = (run.path / REPORT_MD).read_text()
    ext = md[md.index("## External test set"):md.index("## Top features")]
    assert "/data/real_lakes" in ext and "**0.9877**" in ext and "| Real_Lake | 55 |" in ext
    assert "no importance of its own" in md
    assert "## Plots" not in md


def test_lake_rows_accepts_records_mapping_and_columns():
    records = [{"lake": "a", "n": 2, "rmse": 0.1}, {"lake": "b", "n": 5, "rmse": 0.2}]
    mapping = {"a": {"n": 2, "metrics": {"rmse": 0.1}}, "b": {"n": 5, "metrics": {"rmse": 0.2}}}
    columns = {"lake": ["a", "b"], "n": [2, 5], "rmse": [0.1, 0.2]}
    for shape in (records, mapping, columns):
        rows = lake_rows(shape)
        assert [(r["lake"], r["n"], r["rmse"]) for r in rows] == [("b", 5, 0.2), ("a", 2, 0.1)]
    assert lake_rows(None) == []


def test_markdown_shows_missing_values_as_na(run_and_results):
    run, cfg, results = run_and_results
    results["test"]["metrics"]["r2"] = float("nan")
    results["cv"] = None
    report = build_report(run, cfg, results)
    assert report["metrics"]["r2"] is None and not math.isnan(report["metrics"]["rmse"])
    md = render_markdown(report)
    assert "| R² | **n/a** |" in md
    assert "Not run (`evaluation.cv_folds=K`" in md


def test_confusion_counts_rounded_clipped_predictions():
    from kaayko_exp.evaluation.plots import confusion

    actual = np.array([1.0, 1.0, 3.0, 5.0, 5.0])
    predicted = np.array([0.2, 1.3, 3.26, 5.9, 4.74])  # -> 1.0, 1.5, 3.5, 5.0, 4.5
    c = confusion(actual, predicted)
    assert c.shape == (9, 9) and c.sum() == 5
    assert c[0, 0] == 1 and c[0, 1] == 1 and c[4, 5] == 1 and c[8, 8] == 1 and c[8, 7] == 1


def test_safety_shares_sit_next_to_the_safety_column(run_and_results):
    run, cfg, results = run_and_results
    summary = {"name": "kaayko", "rows_changed_share": 0.2072, "per_rule": {"gusts": 0.1314, "cold_water": 0.05}}
    results["test"]["safety"] = summary
    results["external"] = {**results["test"], "path": "/data/real", "n": 400,
                           "safety": {**summary, "rows_changed_share": 0.5}}
    report = build_report(run, cfg, results)
    assert report["safety"] == summary and report["test"]["safety"] == summary
    assert report["external"]["safety"]["rows_changed_share"] == 0.5
    md = render_markdown(report)
    test_md = md[md.index("## Held-out test set"):md.index("## Cross-validation")]
    header = next(line for line in test_md.splitlines() if line.startswith("| metric |"))
    changed = next(line for line in test_md.splitlines() if line.startswith("| rows changed by the safety layer |"))
    cells = [c.strip() for c in changed.strip("|").split("|")]
    # the share sits in the safety-layer column, under its header
    assert [c.strip() for c in header.strip("|").split("|")].index("model + safety layer `kaayko`") == 2
    assert cells == ["rows changed by the safety layer", "", "20.7 %", "", ""]
    assert "share of rows each rule adjusted: gusts 13.1 %, cold_water 5.0 %." in test_md
    ext_md = md[md.index("## External test set"):md.index("## Top features")]
    assert "| 50.0 % |" in ext_md


def _rule_header_and_note(md):
    header = next(line for line in md.splitlines() if line.startswith("| metric | **model** |"))
    return "(= labels, by construction)" in header, "equals the labels by construction" in md


@pytest.mark.parametrize("data, expected", [
    ({"source": "synthetic", "label_noise": 0.0}, True),
    ({"source": "synthetic", "label_noise": 0.25}, False),
    ({"source": "kaayko_csv", "path": "tests/data/kaayko_sample"}, False),
    ({"source": "parquet", "path": "x.parquet"}, False),
])
def test_rule_baseline_is_flagged_when_labels_are_the_rules_output(run_and_results, data, expected):
    run, cfg, results = run_and_results
    cfg.data = data
    report = build_report(run, cfg, results)
    assert report["rule_baseline_by_construction"] is expected
    assert _rule_header_and_note(render_markdown(report)) == (expected, expected)


def test_rule_baseline_flag_falls_back_to_the_manifest_source(run_and_results):
    run, cfg, results = run_and_results  # cfg has no data node; the manifest says synthetic
    assert build_report(run, cfg, results)["rule_baseline_by_construction"] is True
    run.manifest["data"]["source"] = "parquet"
    assert build_report(run, cfg, results)["rule_baseline_by_construction"] is False


def test_unseen_category_rows_are_reported(run_and_results):
    run, cfg, results = run_and_results
    results["test"]["unseen_levels"] = {"rows": 80, "levels": {"lake_type": {"Crater": 80},
                                                                "condition": {"Ash": 3}}}
    report = build_report(run, cfg, results)
    assert report["test"]["unseen_levels"]["rows"] == 80
    md = render_markdown(report)
    test_section = md[md.index("## Held-out test set"):md.index("## Cross-validation")]
    assert "**80 rows have a category level not seen in training**" in test_section
    assert "`lake_type=Crater` (80)" in test_section and "`condition=Ash` (3)" in test_section
    results["test"]["unseen_levels"] = {"rows": 0, "levels": {}}
    md = render_markdown(build_report(run, cfg, results))
    assert "Every category level of these rows was seen in training." in md


def _zlib_levels(png: bytes) -> set[int]:
    """FLEVEL (bits 6-7 of the zlib header: 0 fastest ... 3 best) of a PNG's image data stream."""
    import struct

    pos, data = 8, b""
    while pos < len(png):
        length, kind = struct.unpack(">I4s", png[pos:pos + 8])
        if kind == b"IDAT":
            data += png[pos + 8:pos + 8 + length]
        pos += 12 + length
    return {data[1] >> 6}


def test_report_plots_use_the_fast_png_level(run_and_results):
    """The report's figures are encoded at a fast zlib level (Pillow's default, 6, costs ~10 % more of the
    report stage's CPU time at sample_size=large); the image itself is lossless either way."""
    run, cfg, results = run_and_results
    pngs = [p for p in write_report(run, cfg, results) if p.suffix == ".png"]
    assert len(pngs) == 4
    for p in pngs:
        png = p.read_bytes()
        assert _zlib_levels(png) <= {0}, f"{p.name} was compressed at a slow zlib level"  # (zlib level 1: 0)


def test_report_figures_are_drawn_once_with_every_label_inside(run_and_results, monkeypatch):
    """No trimming pass (``bbox_inches="tight"`` lays each figure out twice): each figure is drawn once, and
    the margins its plot function sets hold every label, also 32-character lake names on the residual plot."""
    import matplotlib.figure

    from kaayko_exp.evaluation import plots

    run, cfg, results = run_and_results
    frame = pd.read_parquet(run.path / "predictions" / "test.parquet")
    long_names = {lake: f"{lake} with a very long lake name xx" for lake in frame["lake"].unique()}
    frame["lake"] = frame["lake"].map(long_names)
    frame.to_parquet(run.path / "predictions" / "test.parquet")
    draws, outside = [], []
    real_draw = matplotlib.figure.Figure.draw

    def draw(fig, renderer):
        real_draw(fig, renderer)
        draws.append(fig)
        box = fig.bbox  # what each axes drew (tick labels, axis labels, title, colour bar) and the suptitle
        for what, ext in [(ax.get_title() or ax.get_ylabel() or "axes", ax.get_tightbbox(renderer))
                          for ax in fig.axes] + [(t.get_text(), t.get_window_extent(renderer)) for t in fig.texts]:
            if ext.x0 < box.x0 - 1 or ext.x1 > box.x1 + 1 or ext.y0 < box.y0 - 1 or ext.y1 > box.y1 + 1:
                outside.append(what)

    monkeypatch.setattr(matplotlib.figure.Figure, "draw", draw)
    monkeypatch.setattr(plots, "_cores", lambda: 1)  # every figure drawn in this process, where draws are counted
    written = plots.make_plots(run.path, results, run.path / "plots")
    assert len(written) == 4 and len(draws) == 4, f"{len(draws)} draws for {len(written)} figures"
    assert outside == [], f"labels outside their figure: {outside[:5]}"


def _pixels(path):
    from PIL import Image

    return np.asarray(Image.open(path))


def _recording_pids(monkeypatch, plots, fail_in_child=False):
    """Wrap the plot functions so each records the process that drew its figure (and, with ``fail_in_child``,
    fails there); returns {figure name: pid}."""
    import os

    parent, drawn = os.getpid(), {}
    for name in ("plot_predicted_vs_actual", "plot_residuals_by_lake", "plot_confusion", "plot_importance"):
        real = getattr(plots, name)

        def wrapped(*args, _real=real, **kwargs):
            path = args[-1]
            if fail_in_child and os.getpid() != parent:
                raise RuntimeError("a figure that fails in the child")
            path.with_suffix(".pid").parent.mkdir(parents=True, exist_ok=True)
            path.with_suffix(".pid").write_text(str(os.getpid()))
            return _real(*args, **kwargs)

        monkeypatch.setattr(plots, name, wrapped)
    return parent


def test_figures_drawn_in_a_second_process_are_the_figures_drawn_here(run_and_results, monkeypatch, tmp_path):
    """With a second core, some of the report's figures are drawn in a forked child; they are the same images
    (pixel for pixel) as drawing all four in this process, and the paths come back in the usual order."""
    from kaayko_exp.evaluation import plots

    run, _, results = run_and_results
    monkeypatch.delitem(sys.modules, "distributed", raising=False)  # no Dask client here (earlier tests import it)
    monkeypatch.setattr(plots, "_cores", lambda: 1)
    serial = plots.make_plots(run.path, results, tmp_path / "serial", seed=7)
    monkeypatch.setattr(plots, "_cores", lambda: 2)
    parent = _recording_pids(monkeypatch, plots)
    forked = plots.make_plots(run.path, results, tmp_path / "forked", seed=7)
    assert [p.name for p in forked] == [p.name for p in serial] == [
        plots.PREDICTED_VS_ACTUAL, plots.RESIDUALS_BY_LAKE, plots.CONFUSION_MATRIX, plots.FEATURE_IMPORTANCE]
    drawers = [int(p.with_suffix(".pid").read_text()) for p in forked]
    # divided by drawing cost: residuals by lake and the confusion matrix here, the other two in the child
    assert drawers[1:3] == [parent, parent] and parent not in (drawers[0], drawers[3])
    assert drawers[0] == drawers[3]
    for a, b in zip(serial, forked):
        assert b.read_bytes().startswith(PNG) and np.array_equal(_pixels(a), _pixels(b)), b.name


def test_figures_are_divided_between_the_two_processes_by_their_drawing_cost():
    from kaayko_exp.evaluation.plots import _shares

    assert _shares([0.18, 0.26, 0.13, 0.18]) == ([1, 2], [0, 3])  # 0.39 here, 0.36 in the child
    assert _shares([1.0, 1.0, 1.0, 1.0]) == ([0, 2], [1, 3])
    assert _shares([5.0, 1.0, 1.0, 1.0, 1.0]) == ([0], [1, 2, 3, 4])
    assert _shares([1.0, 2.0]) == ([1], [0])


def test_figures_a_failing_child_did_not_draw_are_drawn_here(run_and_results, monkeypatch, tmp_path, caplog):
    from kaayko_exp.evaluation import plots

    run, _, results = run_and_results
    monkeypatch.delitem(sys.modules, "distributed", raising=False)  # no Dask client here (earlier tests import it)
    monkeypatch.setattr(plots, "_cores", lambda: 2)
    parent = _recording_pids(monkeypatch, plots, fail_in_child=True)
    written = plots.make_plots(run.path, results, tmp_path / "plots", seed=7)
    assert len(written) == 4 and all(p.read_bytes().startswith(PNG) for p in written)
    assert {int(p.with_suffix(".pid").read_text()) for p in written} == {parent}
    assert "drawing them here" in caplog.text


def test_the_run_draws_its_figures_from_the_evaluate_stages_predictions_without_reading_the_file(tmp_path,
                                                                                                   monkeypatch):
    # the figures of a run whose evaluate stage ran in the same process come from the predictions it wrote, not
    # from reading predictions/test.parquet back; they are the figures the file gives
    import pandas as pd

    from kaayko_exp.evaluation import plots
    from kaayko_exp.runs.rundir import RunDir
    from runhelpers import train_in_process

    reads, read_parquet = [], pd.read_parquet
    monkeypatch.setattr(pd, "read_parquet", lambda path, *a, **k: reads.append(str(path)) or read_parquet(path, *a, **k))
    _, run_dir = train_in_process(tmp_path, ["model=xgboost", "model.params.n_estimators=10", "plots=true"])
    assert not any(r.endswith("test.parquet") for r in reads) and (run_dir / "predictions" / "test.parquet").exists()
    monkeypatch.setattr(pd, "read_parquet", read_parquet)
    monkeypatch.setattr(plots, "_cores", lambda: 1)
    results = json.loads((run_dir / "evaluate" / "results.json").read_text())
    again = plots.make_plots(RunDir.open(run_dir).path, results, tmp_path / "from_file", seed=42)
    assert len(again) == 4
    for path in again:
        assert np.array_equal(_pixels(path), _pixels(run_dir / "plots" / path.name)), path.name
