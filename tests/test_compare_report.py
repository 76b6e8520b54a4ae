"""``--report DIR``: comparison.md and a self-contained comparison.html (kaayko_exp.compare.render / plots)."""

from __future__ import annotations

import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from test_compare_stats import make_run

from kaayko_exp.compare.plots import learning_curve_lines, varied_params
from kaayko_exp.compare.records import TrialInfo
from kaayko_exp.compare.render import write_report
from kaayko_exp.errors import ConfigError

PNG = b"\x89PNG\r\n\x1a\n"


class _Page(HTMLParser):
    """Collects every tag, attribute and the visible text of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.text: list[str] = []
        self.open: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag not in ("meta", "img", "br", "link"):
            self.open.append(tag)

    def handle_endtag(self, tag):
        assert self.open and self.open[-1] == tag, f"</{tag}> closes <{self.open[-1] if self.open else None}>"
        self.open.pop()

    def handle_data(self, data):
        self.text.append(data)


def _parse(path: Path) -> _Page:
    page = _Page()
    page.feed(path.read_text(encoding="utf-8"))
    page.close()
    assert page.open == []
    return page


def _family_runs(tmp_path):
    """Three model families on one test set; A wins on 3 of 4 lakes against B; C has CV results."""
    a = make_run(tmp_path, "a", [0.1, 0.2, 0.3, 0.8], model="xgboost", metrics={"mae": 0.35, "rmse": 0.5},
                 params={"model.name": "xgboost", "seed": 42}, rows=1000)
    b = make_run(tmp_path, "b", [0.2, 0.4, 0.6, 0.4], model="histgb", metrics={"mae": 0.4, "rmse": 0.55},
                 params={"model.name": "histgb", "seed": 42}, rows=1000)
    c = make_run(tmp_path, "c", [0.5, 0.5, 0.5, 0.5], model="ridge", metrics={"mae": 0.5, "rmse": 0.6},
                 params={"model.name": "ridge", "seed": 42}, rows=1000, cv_mean={"mae": 0.48}, cv_std={"mae": 0.03})
    rows = [{"run": r.shown, "model": r.model, "mae": r.metrics["mae"], "rmse": r.metrics["rmse"]} for r in (a, b, c)]
    return [a, b, c], rows


def test_report_writes_markdown_and_an_offline_html_with_embedded_plots(tmp_path):
    records, rows = _family_runs(tmp_path)
    out = write_report(tmp_path / "report", records, table_rows=rows, columns=["run", "model", "mae", "rmse"])
    assert out["markdown"] == tmp_path / "report" / "comparison.md"
    names = sorted(p.name for p in out["plots"])
    assert names == ["lake_mae.png", "metric_mae.png", "win_rate.png"]
    assert all(p.read_bytes().startswith(PNG) for p in out["plots"])

    page = _parse(out["html"])
    links = [v for _, attrs in page.tags for k, v in attrs.items() if k in ("src", "href") and v]
    assert links and all(v.startswith("data:image/png;base64,") for v in links)
    assert not re.search(r"https?://", out["html"].read_text(encoding="utf-8"))
    assert not any(tag in ("script", "link", "iframe") for tag, _ in page.tags)
    assert sum(tag == "img" for tag, _ in page.tags) == 3
    text = " ".join(page.text)
    assert "outputs/a" in text and "xgboost" in text and "0.3500" in text  # the table, values as given
    assert "0.75" in text and "0.25" in text  # a vs b and b vs a in the win-rate matrix
    assert "3/1/0" in text  # wins/losses/ties of a vs b
    assert "-0.0500" in text  # mean MAE difference of a vs b

    md = out["markdown"].read_text(encoding="utf-8")
    assert "| run | model | mae | rmse |" in md
    assert "| outputs/a | xgboost | 0.3500 | 0.5000 |" in md
    assert "| R1 | — | 0.75 ns |" in md  # row a: not significant on 4 lakes
    assert "![Win-rate heatmap](plots/win_rate.png)" in md
    assert "cannot reach p < 0.05" in md
    # per-lake table of the best runs: a is best on Alpha (0.1) and b on Delta (0.4), bold
    assert re.search(r"\| Alpha \| 2 \| \*\*0\.1000\*\* \| 0\.2000 \| 0\.5000 \| R1 \|", md)
    assert re.search(r"\| Delta \| 2 \| 0\.8000 \| \*\*0\.4000\*\* \| 0\.5000 \| R2 \|", md)


def test_compare_plots_draw_on_the_figure_api_without_pyplot(tmp_path, monkeypatch):
    # one way to draw: compare's figures come from evaluation.plots.figure as a run's do (no pyplot state)
    import sys

    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)  # importing pyplot now fails
    records, rows = _family_runs(tmp_path)
    out = write_report(tmp_path / "report", records, table_rows=rows)
    assert sorted(p.name for p in out["plots"]) == ["lake_mae.png", "metric_mae.png", "win_rate.png"]
    recs = [make_run(tmp_path, f"s{size}", [mae] * 4, test_set=None, model="xgboost", rows=rows_,
                     choices={"model": "xgboost", "sample_size": size},
                     params={"model.name": "xgboost", "sample_size.name": size, "seed": 1},
                     metrics={"mae": mae, "class_accuracy": 1 - mae})
            for size, rows_, mae in (("tiny", 2400, 0.4), ("medium", 39000, 0.2))]
    out = write_report(tmp_path / "curve", recs, table_rows=[])
    assert (tmp_path / "curve" / "plots" / "learning_curve.png").read_bytes().startswith(PNG)
    trials = [make_run(tmp_path, f"t{k}", [0.1 * (k + 1)] * 4, model="xgboost",
                       trial=TrialInfo(sweep_dir=tmp_path, number=k, state="COMPLETE", values=[0.1 * k]),
                       params={"model.max_depth": depth, "seed": 42}, metrics={"mae": 0.1 * (k + 1)})
              for k, depth in enumerate((3, 6, 9))]
    out = write_report(tmp_path / "sweep", trials, table_rows=[{"run": r.shown} for r in trials])
    assert {"sweep_model.max_depth.png", "parallel_coordinates.png"} <= {p.name for p in out["plots"]}
    assert all(p.read_bytes().startswith(PNG) for p in out["plots"])


def test_report_names_the_runs_it_did_not_compare(tmp_path):
    records, rows = _family_runs(tmp_path)
    odd = make_run(tmp_path, "odd", [0.1] * 4,
                   test_set={"n": 8, "split_sha256": "5" * 64, "labels_sha256": "f" * 64, "lakes": 4})
    out = write_report(tmp_path / "r", records + [odd], table_rows=rows)
    md = out["markdown"].read_text(encoding="utf-8")
    assert "- 3 runs share test set" in md
    assert "- run outputs/odd: it has another test set (different labels hash" in md


def test_learning_curve_when_runs_differ_only_in_sample_size(tmp_path):
    recs = []
    for model in ("xgboost", "histgb"):
        for size, rows, mae in (("tiny", 2400, 0.4), ("medium", 39000, 0.2), ("complete", 1900000, 0.1)):
            recs.append(make_run(tmp_path, f"{model}-{size}", [mae] * 4, test_set=None, model=model, rows=rows,
                                 choices={"model": model, "sample_size": size},
                                 params={"model.name": model, "sample_size.name": size, "seed": 1, "n_jobs": -1},
                                 metrics={"mae": mae, "class_accuracy": 1 - mae}))
    lines = learning_curve_lines(recs)
    assert sorted(lines) == ["model.name=histgb", "model.name=xgboost"]
    assert [r.rows for r in lines["model.name=xgboost"]] == [2400, 39000, 1900000]
    out = write_report(tmp_path / "rep", recs, table_rows=[])
    assert (tmp_path / "rep" / "plots" / "learning_curve.png").read_bytes().startswith(PNG)
    md = out["markdown"].read_text(encoding="utf-8")
    assert "## Learning curve" in md
    assert "Lines: model.name=xgboost; model.name=histgb." in md
    assert "- run outputs/xgboost-tiny: its report.json records no test-set hashes" in md


def test_no_learning_curve_when_something_else_varies_alone(tmp_path):
    a = make_run(tmp_path, "a", [0.1] * 4, rows=1000, params={"seed": 1}, metrics={"mae": 0.1})
    b = make_run(tmp_path, "b", [0.1] * 4, rows=1000, params={"seed": 2}, metrics={"mae": 0.1})
    assert learning_curve_lines([a, b]) == {}


def test_sweep_trials_get_parameter_plots_and_parallel_coordinates(tmp_path):
    recs = []
    for k, (depth, lr, booster) in enumerate([(3, 0.01, "gbtree"), (6, 0.1, "dart"), (9, 0.3, "gbtree")]):
        recs.append(make_run(tmp_path, f"t{k}", [0.1 * (k + 1)] * 4, model="xgboost",
                             trial=TrialInfo(sweep_dir=tmp_path, number=k, state="COMPLETE", values=[0.1 * k]),
                             params={"model.max_depth": depth, "model.learning_rate": lr, "model.booster": booster,
                                     "seed": 42, "resume": None},
                             metrics={"mae": 0.1 * (k + 1)}))
    assert varied_params(recs) == ["model.booster", "model.learning_rate", "model.max_depth"]
    out = write_report(tmp_path / "rep", recs, table_rows=[{"run": r.shown} for r in recs])
    names = {p.name for p in out["plots"]}
    assert {"sweep_model.booster.png", "sweep_model.learning_rate.png", "sweep_model.max_depth.png",
            "parallel_coordinates.png"} <= names
    page = _parse(out["html"])
    assert sum(tag == "img" for tag, _ in page.tags) == len(out["plots"])
    assert "## Sweep" in out["markdown"].read_text(encoding="utf-8")


def test_report_dir_that_is_a_file_is_a_user_error(tmp_path):
    records, rows = _family_runs(tmp_path)
    (tmp_path / "taken").write_text("x")
    with pytest.raises(ConfigError, match="is a file"):
        write_report(tmp_path / "taken", records, table_rows=rows)


def test_html_renders_in_a_headless_browser(tmp_path):
    browser = next((shutil.which(b) for b in ("chromium", "chromium-browser", "google-chrome") if shutil.which(b)),
                   None)
    if browser is None:
        pytest.skip("no headless browser installed (chromium, chromium-browser or google-chrome not on PATH): "
                    "the offline HTML was only checked with html.parser")
    records, rows = _family_runs(tmp_path)
    out = write_report(tmp_path / "rep", records, table_rows=rows)
    shot = tmp_path / "shot.png"
    subprocess.run([browser, "--headless", "--disable-gpu", "--no-sandbox", f"--screenshot={shot}",
                    "--window-size=1200,2000", out["html"].as_uri()], check=True, timeout=120,
                   capture_output=True)
    assert shot.read_bytes().startswith(PNG)


def test_a_relative_report_dir_is_relative_to_the_cwd(tmp_path, monkeypatch):
    records, rows = _family_runs(tmp_path)
    monkeypatch.chdir(tmp_path)
    out = write_report("reports/cmp", records, table_rows=rows)
    assert (tmp_path / "reports" / "cmp" / "comparison.html").is_file()
    assert "](plots/metric_mae.png)" in (tmp_path / "reports" / "cmp" / "comparison.md").read_text(encoding="utf-8")
    assert out["html"].resolve() == (tmp_path / "reports" / "cmp" / "comparison.html")


def test_the_per_run_plot_follows_a_validation_metric_too(tmp_path):
    from kaayko_exp.compare.plots import plot_metric_per_run

    runs = [make_run(tmp_path, f"r{i}", [0.1, 0.2, 0.3, 0.4], write=False, val_metrics={"rmse": v})
            for i, v in enumerate((0.3, 0.2))]
    assert plot_metric_per_run(runs, "val_rmse", tmp_path / "val.png") == tmp_path / "val.png"
    assert (tmp_path / "val.png").stat().st_size > 1000
    assert plot_metric_per_run(runs, "cv_rmse", tmp_path / "cv.png") is None  # no run has CV


def test_bars_are_labelled_by_what_differs_between_the_runs(tmp_path, monkeypatch):
    from kaayko_exp.compare import plots

    recs = [make_run(tmp_path, f"{m}-{size}", [0.1] * 4, write=False, model=m, metrics={"mae": mae},
                     choices={"model": m, "sample_size": size, "split": "lakes"},
                     params={"model.name": m, "sample_size.name": size, "seed": 42})
            for m, size, mae in (("xgboost", "large", 0.02), ("histgb", "large", 0.03), ("xgboost", "tiny", 0.09))]
    drawn = {}

    def keep(fig, path):  # the figure as drawn, before it is written and closed
        drawn["ticks"] = [t.get_text() for t in fig.axes[0].get_xticklabels()]
        return path

    monkeypatch.setattr(plots, "save_figure", keep)
    plots.plot_metric_per_run(recs, "mae", tmp_path / "bars.png")
    assert drawn["ticks"] == ["xgboost · large", "histgb · large", "xgboost · tiny"]
    # runs of one model that differ in a parameter, and two identical ones told apart by their folders
    same = [make_run(tmp_path, f"d{k}", [0.1] * 4, write=False, model="xgboost", metrics={"mae": 0.1},
                     choices={"model": "xgboost"}, params={"model.params.max_depth": depth, "seed": 42})
            for k, depth in enumerate((3, 6, 6))]
    assert plots.run_labels(same) == ["max_depth=3", "max_depth=6 · d1", "max_depth=6 · d2"]


@pytest.mark.parametrize("k", [2, 3, 7])
def test_the_win_rate_title_clears_its_colour_bar(k):
    from kaayko_exp.compare.plots import win_rate_figure

    m = np.full((k, k), 0.5)
    np.fill_diagonal(m, np.nan)
    fig = win_rate_figure([f"outputs/multirun/2026-12-04/20-06-53/{i}" for i in range(k)], m, np.zeros((k, k), bool))
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    title = fig._suptitle.get_window_extent(renderer)
    colour_bar = fig.axes[-1].get_tightbbox(renderer)
    assert not title.overlaps(colour_bar)
    assert title.x0 >= 0 and title.x1 <= fig.bbox.width  # not cut off at the figure's edge


def test_the_pair_table_shows_the_median_shift_its_interval_and_adjusted_p(tmp_path):
    records, rows = _family_runs(tmp_path)
    out = write_report(tmp_path / "report", records, table_rows=rows)
    md = out["markdown"].read_text(encoding="utf-8")
    header = next(line for line in md.splitlines() if line.startswith("| run | vs |"))
    for col in ("median Δ", "95 % CI (signed-rank)", "Wilcoxon p", "Holm p", "significant", "mean Δ", "95 % CI (t)"):
        assert f"| {col} |" in header
    assert "over the 3 pair(s) of this matrix" in md
    assert "Unit: the held-out lake" in md and "Training-seed variance is not included" in md
    # a vs b: d = -0.1, -0.2, -0.3, +0.4: Hodges–Lehmann -0.125, and 4 lakes give an unbounded interval
    assert re.search(r"\| R1 \| R2 \| 4 \| 3/1/0 \| 0\.75 \| -0\.1250 \| \(−∞, \+∞\) \|", md)
    assert "- R1: xgboost — outputs/a" in md  # runs named by what differs, with their folder
