"""``python -m kaayko_exp.compare``: the comparison table on real tiny runs (issue 10, items 1, 2 and 5).

Expected values are read from the runs' own report.json / split / prediction files with json, numpy and
hashlib, never through the code under test.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import shutil
import statistics
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from runhelpers import ROOT, report, train_in_process

from kaayko_exp.compare.cli import run
from kaayko_exp.errors import KaaykoError
from kaayko_exp.evaluation.report import ReportError, read_report

METRICS = ["mae", "rmse", "r2", "class_accuracy", "within_half"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Four tiny runs under one folder: ridge (seed 42), ridge seed 7, ridge alpha 30, a small xgboost."""
    root = tmp_path_factory.mktemp("compare")
    specs = {"a": ["model=ridge"], "b": ["model=ridge", "seed=7"], "c": ["model=ridge", "model.params.alpha=30"],
             "d": ["model=xgboost", "model.params.n_estimators=8", "model.params.max_depth=2"]}
    for name, overrides in specs.items():
        train_in_process(root, overrides, name=name)
    return root


@pytest.fixture
def here(runs, monkeypatch):
    """Work from the runs' folder so inputs are typed as relative paths (``a``, ``b``), as users do."""
    monkeypatch.chdir(runs)
    return runs


def compare_json(capsys, *args: str) -> dict:
    assert run([*args, "--format", "json"]) == 0
    return json.loads(capsys.readouterr().out)


def by_run(doc: dict) -> dict[str, dict]:
    return {row["run"]: row for row in doc["rows"]}


# ---------------------------------------------------------------------------- table contents
def test_table_values_equal_the_reports(here, capsys):
    doc = compare_json(capsys, "a", "b", "c", "d", "--metrics", ",".join(METRICS))
    rows = by_run(doc)
    assert list(rows) == ["a", "b", "c", "d"]
    for name, row in rows.items():
        rep = report(here / name)
        assert row["status"] == "completed"
        assert row["model"] == rep["model"]["name"]
        for m in METRICS:
            assert row[m] == rep["metrics"][m]
        assert row["train_seconds"] == rep["timings"]["total"]
        assert row["rows"] == rep["split"]["sizes"]["train"]
    names = [c["name"] for c in doc["columns"]]
    # the parameters that differ, resolved from the saved config; equal ones (sample size) are left out
    assert {"seed", "model.params.alpha"} <= set(names)
    assert "sample_size.rows" not in names and "features.name" not in names
    # a key only another model family has is no difference by itself (the model column shows the family)
    assert "model.params.n_estimators" not in names and "model.params.fit_intercept" not in names
    assert {c["name"]: c["label"] for c in doc["columns"]}["model.params.alpha"] == "alpha"
    assert rows["c"]["model.params.alpha"] == 30 and rows["a"]["model.params.alpha"] == 1.0
    assert rows["d"]["model.params.alpha"] is None  # xgboost has no alpha
    assert rows["b"]["seed"] == 7
    assert "model" in names and "choice" not in names


def test_all_params_shows_every_resolved_parameter(here, capsys):
    doc = compare_json(capsys, "a", "c", "--all-params")
    names = [c["name"] for c in doc["columns"]]
    assert "sample_size.rows" in names and "sample_size" in names
    assert "model.params.fit_intercept" in names
    assert by_run(doc)["a"]["sample_size.rows"] == report(here / "a")["config"]["sample_size"]["rows"]


def test_delta_column_against_the_baseline(here, capsys):
    doc = compare_json(capsys, "a", "c", "d", "--baseline", "a", "--metrics", "mae,r2")
    rows = by_run(doc)
    base = report(here / "a")["metrics"]
    for name in ("a", "c", "d"):
        mine = report(here / name)["metrics"]
        for m in ("mae", "r2"):
            assert rows[name][f"delta_{m}"] == pytest.approx(mine[m] - base[m], abs=1e-12)
    assert rows["a"]["delta_mae"] == 0.0
    assert doc["baseline"] == "a"


def test_a_baseline_outside_the_inputs_is_added(here, capsys):
    doc = compare_json(capsys, "c", "--baseline", "a")
    assert [r["run"] for r in doc["rows"]] == ["a", "c"]


def test_unknown_baseline_is_a_user_error(here):
    with pytest.raises(KaaykoError, match="--baseline nope"):
        run(["a", "--baseline", "nope"])


# ---------------------------------------------------------------------------- filters, sorting, top
def test_filter_on_the_model_and_on_a_metric(here, capsys):
    doc = compare_json(capsys, "a", "b", "c", "d", "--filter", "model=xgboost")
    assert [r["run"] for r in doc["rows"]] == ["d"]
    maes = sorted(report(here / n)["metrics"]["mae"] for n in "abcd")
    cut = (maes[1] + maes[2]) / 2
    doc = compare_json(capsys, "a", "b", "c", "d", "--filter", f"mae<{cut}")
    assert sorted(r["mae"] for r in doc["rows"]) == maes[:2]
    doc = compare_json(capsys, "a", "b", "c", "d", "--filter", "model=ridge", "--filter", "seed!=7")
    assert [r["run"] for r in doc["rows"]] == ["a", "c"]
    doc = compare_json(capsys, "a", "b", "c", "d", "--filter", "alpha>=30")  # a config key by its last part
    assert [r["run"] for r in doc["rows"]] == ["c"]


def test_bad_filters_are_user_errors(here):
    with pytest.raises(KaaykoError, match="KEY OP VALUE"):
        run(["a", "--filter", "mae"])
    with pytest.raises(KaaykoError, match="no run has 'nosuchkey'"):
        run(["a", "--filter", "nosuchkey=1"])
    with pytest.raises(KaaykoError, match="not a number"):
        run(["a", "--filter", "mae<low"])
    with pytest.raises(KaaykoError, match="Unknown metric 'maee'"):
        run(["a", "--sort-by", "maee"])


@pytest.mark.parametrize("metric, lower_first", [("mae", True), ("rmse", True), ("r2", False),
                                                 ("class_accuracy", False)])
def test_sort_by_is_direction_aware(here, capsys, metric, lower_first):
    doc = compare_json(capsys, "a", "b", "c", "d", "--sort-by", metric)
    expected = sorted("abcd", key=lambda n: report(here / n)["metrics"][metric], reverse=not lower_first)
    assert [r["run"] for r in doc["rows"]] == expected
    doc = compare_json(capsys, "a", "b", "c", "d", "--sort-by", metric, "--top", "2")
    assert [r["run"] for r in doc["rows"]] == expected[:2]
    doc = compare_json(capsys, "a", "b", "c", "d", "--sort-by", metric, "--metrics", "within_half")  # not shown
    assert [r["run"] for r in doc["rows"]] == expected


def test_sort_by_a_validation_metric(here, capsys):
    doc = compare_json(capsys, "a", "b", "c", "d", "--sort-by", "val_rmse", "--metrics", "val_rmse,mae")
    expected = sorted("abcd", key=lambda n: report(here / n)["val"]["metrics"]["rmse"])
    assert [r["run"] for r in doc["rows"]] == expected
    assert [r["val_rmse"] for r in doc["rows"]] == [report(here / n)["val"]["metrics"]["rmse"] for n in expected]


def test_only_changed_drops_columns_equal_in_every_row(here, capsys):
    doc = compare_json(capsys, "a", "c")
    assert "model" in [c["name"] for c in doc["columns"]]
    doc = compare_json(capsys, "a", "c", "--only-changed")
    names = [c["name"] for c in doc["columns"]]
    assert "model" not in names  # both ridge
    assert {"run", "status", "model.params.alpha", "mae"} <= set(names)


def test_group_by_seed_gives_mean_std_and_count(here, capsys):
    doc = compare_json(capsys, "a", "b", "c", "--group-by")
    assert doc["group_by"] == ["seed"]
    assert len(doc["rows"]) == 2
    pair = next(r for r in doc["rows"] if r["runs"] == ["a", "b"])
    maes = [report(here / n)["metrics"]["mae"] for n in "ab"]
    assert pair["count"] == 2
    assert pair["mae"]["mean"] == pytest.approx(statistics.fmean(maes), abs=1e-12)
    assert pair["mae"]["std"] == pytest.approx(statistics.stdev(maes), abs=1e-12)
    assert pair["mae"]["n"] == 2
    single = next(r for r in doc["rows"] if r["runs"] == ["c"])
    assert single["count"] == 1 and single["mae"] == report(here / "c")["metrics"]["mae"]
    assert "seed" not in [c["name"] for c in doc["columns"]]
    # grouping by alpha too puts a, b and c in one group
    doc = compare_json(capsys, "a", "b", "c", "--group-by", "seed,alpha")
    assert [r["count"] for r in doc["rows"]] == [3]


# ---------------------------------------------------------------------------- formats
class _Cells(HTMLParser):
    def __init__(self):
        super().__init__()
        self.rows: list[list[str]] = []
        self._in = False

    def handle_starttag(self, tag, attrs):
        if tag == "tr":
            self.rows.append([])
        self._in = tag in ("td", "th")
        if self._in:
            self.rows[-1].append("")

    def handle_endtag(self, tag):
        self._in = False

    def handle_data(self, data):
        if self._in:
            self.rows[-1][-1] += data


def test_every_format_parses(here, capsys):
    inputs = ["a", "c", "d", "--baseline", "a"]
    maes = {n: report(here / n)["metrics"]["mae"] for n in "acd"}

    assert run([*inputs, "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert {r["run"]: float(r["mae"]) for r in rows} == maes  # full precision in CSV
    assert float(rows[0]["delta_mae"]) == 0.0

    doc = compare_json(capsys, *inputs)
    assert {r["run"]: r["mae"] for r in doc["rows"]} == maes

    assert run([*inputs, "--format", "html"]) == 0
    parser = _Cells()
    parser.feed(capsys.readouterr().out)
    parser.close()
    header, *body = parser.rows
    assert header[:2] == ["run", "status"] and "mae" in header and "Δmae" in header
    assert [r[0] for r in body] == ["a", "c", "d"]
    assert body[1][header.index("mae")] == f"{maes['c']:.4f}"

    assert run([*inputs, "--format", "markdown"]) == 0
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("|")]
    assert len(lines) == 2 + 3 and lines[1].startswith("|---")
    cells = [c.strip() for c in lines[2].strip("|").split("|")]
    assert cells[0] == "a" and f"{maes['a']:.4f}" in cells

    assert run([*inputs, "--format", "table"]) == 0
    text = capsys.readouterr().out.splitlines()
    assert text[0].split()[:2] == ["run", "status"] and f"{maes['d']:.4f}" in text[4]


def test_output_path_is_written_atomically(here, capsys):
    assert run(["a", "c", "--format", "csv", "--output", "out/cmp.csv"]) == 0
    captured = capsys.readouterr()
    assert captured.out == "" and "wrote out/cmp.csv" in captured.err
    rows = list(csv.DictReader((here / "out" / "cmp.csv").open()))
    assert [r["run"] for r in rows] == ["a", "c"]
    assert not list((here / "out").glob(".*.tmp"))


# ---------------------------------------------------------------------------- damaged input, statuses
@pytest.fixture
def odd(here, tmp_path):
    """A failed run (no report), a damaged manifest, a foreign manifest, an empty folder and a file."""
    failed = tmp_path / "failed"
    shutil.copytree(here / "a", failed)
    m = json.loads((failed / "manifest.json").read_text())
    m["status"] = "failed"
    (failed / "manifest.json").write_text(json.dumps(m))
    (failed / "report.json").unlink()
    (tmp_path / "torn").mkdir()
    (tmp_path / "torn" / "manifest.json").write_text('{"kind": "kaayko-exp-run", "stat')
    (tmp_path / "dvc").mkdir()
    (tmp_path / "dvc" / "manifest.json").write_text('{"kind": "something-else"}')
    (tmp_path / "empty").mkdir()
    (tmp_path / "notes.txt").write_text("hello")
    return tmp_path


def test_damaged_and_foreign_input_is_listed_and_skipped(here, odd, capsys):
    args = ["a", str(odd / "failed"), str(odd / "torn"), str(odd / "dvc"), str(odd / "empty"), str(odd / "notes.txt"),
            "missing-dir"]
    assert run([*args, "--format", "json"]) == 0
    captured = capsys.readouterr()
    doc = json.loads(captured.out)
    assert [(r["run"], r["status"]) for r in doc["rows"]] == [("a", "completed"), (str(odd / "failed"), "failed")]
    assert doc["rows"][1]["mae"] is None and "no report.json" in doc["rows"][1]["note"]
    reasons = {Path(s["path"]).name: s["reason"] for s in doc["skipped"]}
    assert set(reasons) == {"torn", "dvc", "empty", "notes.txt", "missing-dir"}
    assert "damaged" in reasons["torn"] and "not a kaayko-exp run manifest" in reasons["dvc"]
    assert "does not exist" in reasons["missing-dir"] and "file" in reasons["notes.txt"]
    assert captured.err.count("skipped") == 1 and "skipped 5 path(s)" in captured.err  # one summary line
    assert run([*args, "--format", "json", "--verbose"]) == 0
    err = capsys.readouterr().err
    for name, reason in reasons.items():
        assert f"{name}: {reason}" in err  # --verbose lists each with its reason

    assert run([*args, "--format", "json", "--hide-failed"]) == 0
    assert [r["run"] for r in json.loads(capsys.readouterr().out)["rows"]] == ["a"]


def test_zero_valid_runs_exits_2(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "torn").mkdir()
    (tmp_path / "torn" / "manifest.json").write_text("{")
    proc = subprocess.run([sys.executable, "-m", "kaayko_exp.compare", "empty", "torn", "nothing-*"],
                          capture_output=True, text=True, cwd=tmp_path, timeout=120,
                          env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 2, proc.stderr
    assert proc.stdout == ""
    assert "kaayko-exp compare error: None of the 3 input(s) holds a readable kaayko-exp run" in proc.stderr
    assert "skipped torn" in proc.stderr and "skipped nothing-*: the pattern matches nothing" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_help_shows_examples():
    proc = subprocess.run([sys.executable, "-m", "kaayko_exp.compare", "--help"], capture_output=True, text=True,
                          cwd=ROOT, timeout=120)
    assert proc.returncode == 0
    assert "examples:" in proc.stdout and "--baseline RUN" in proc.stdout and "--group-by" in proc.stdout


def test_glob_input(here, capsys):
    doc = compare_json(capsys, "[ab]")
    assert [r["run"] for r in doc["rows"]] == ["a", "b"]


# ---------------------------------------------------------------------------- report schema versions
@pytest.mark.parametrize("version, words", [(0, "reads version 1"), (2, "newer kaayko-exp"), (None, "None"),
                                            ("1", "'1'")])
def test_other_schema_versions_are_named_unsupported(here, tmp_path, capsys, version, words):
    old = tmp_path / "old"
    shutil.copytree(here / "a", old)
    doc = json.loads((old / "report.json").read_text())
    if version is None:
        del doc["schema_version"]
    else:
        doc["schema_version"] = version
    (old / "report.json").write_text(json.dumps(doc))
    with pytest.raises(ReportError, match=words):
        read_report(old)
    assert run(["a", str(old), "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [r["run"] for r in out["rows"]] == ["a"]
    assert out["skipped"][0]["path"] == str(old) and "schema version" in out["skipped"][0]["reason"]


def test_a_v1_report_that_breaks_the_schema_is_not_misread(here, tmp_path):
    bad = tmp_path / "bad"
    shutil.copytree(here / "a", bad)
    doc = json.loads((bad / "report.json").read_text())
    doc["metrics"] = {"mae": "0.3"}  # a string where a number belongs
    (bad / "report.json").write_text(json.dumps(doc))
    with pytest.raises(ReportError, match="does not follow it"):
        read_report(bad)


def test_reader_fields_match_the_file(here):
    rep = read_report(here / "c")
    raw = report(here / "c")
    assert rep.schema_version == 1 and rep.run_id == raw["run_id"]
    assert rep.metrics == {k: v for k, v in raw["metrics"].items() if k != "n"}
    assert rep.val_metrics["rmse"] == raw["val"]["metrics"]["rmse"]
    assert rep.choices == raw["choices"] and rep.model == "ridge" and rep.params["alpha"] == 30
    assert rep.train_rows == raw["split"]["sizes"]["train"] and rep.test_n == raw["test"]["n"]
    assert rep.total_seconds == raw["timings"]["total"] and rep.objective == raw["objective"]
    assert {r["lake"] for r in rep.per_lake} == {r["lake"] for r in raw["test"]["per_lake"]}
    assert rep.test_set == raw["test_set"]


# ---------------------------------------------------------------------------- the test_set block
def test_test_set_block_identifies_the_held_out_rows(here):
    for name in "abc":
        block = report(here / name)["test_set"]
        codes = np.load(here / name / "split" / "assignment.npy", allow_pickle=False)
        labels = pd.read_parquet(here / name / "predictions" / "test.parquet")["paddle_score"].to_numpy(np.float64)
        assert block == {"n": len(labels), "split_sha256": hashlib.sha256(codes.tobytes()).hexdigest(),
                         "labels_sha256": hashlib.sha256(labels.tobytes()).hexdigest(),
                         "lakes": int(pd.read_parquet(here / name / "predictions" / "test.parquet")["lake"].nunique())}
    same = [report(here / n)["test_set"] for n in "ac"]  # same seed and sample: the same held-out rows
    assert same[0] == same[1]
    assert report(here / "b")["test_set"]["split_sha256"] != same[0]["split_sha256"]  # another seed


# ---------------------------------------------------------------------------- sweeps
@pytest.fixture
def sweep(here, tmp_path):
    """A sweep folder as the sweeper writes it: sweep.json and one run directory per trial that got one."""
    root = tmp_path / "multirun" / "s1"
    root.mkdir(parents=True)
    shutil.copytree(here / "a", root / "0")
    shutil.copytree(here / "c", root / "1")
    v0 = report(here / "a")["objective"]["value"]
    v1 = report(here / "c")["objective"]["value"]
    trials = [{"number": 0, "job_num": 0, "state": "COMPLETE", "values": [v0], "params": {"model.params.alpha": 1.0},
               "run_dir": "0", "steps": 1, "duration_s": 4.2},
              {"number": 1, "job_num": 1, "state": "PRUNED", "values": [v1], "params": {"model.params.alpha": 30},
               "run_dir": "1", "steps": 1, "duration_s": 3.1},
              {"number": 2, "job_num": 2, "state": "FAIL", "values": None, "params": {"model.params.alpha": 0.5},
               "run_dir": None, "steps": 0, "duration_s": 0.4}]
    (root / "sweep.json").write_text(json.dumps({"kind": "optuna-sweep", "schema_version": 1, "study_name": "s1",
                                                 "directions": ["minimize"], "n_trials": 3, "trials": trials}))
    return root, v0, v1


def test_a_sweep_directory_expands_to_its_trials(sweep, capsys):
    root, v0, v1 = sweep
    doc = compare_json(capsys, str(root))
    rows = doc["rows"]
    assert [(r["trial"], r["state"], r["trial_value"]) for r in rows] == [(0, "COMPLETE", v0), (1, "PRUNED", v1),
                                                                          (2, "FAIL", None)]
    assert rows[0]["run"] == str(root / "0") and rows[1]["run"] == str(root / "1")
    assert rows[0]["mae"] == report(root / "0")["metrics"]["mae"]
    assert rows[2]["status"] == "failed" and rows[2]["mae"] is None
    # found from a folder above the sweep too, with the same trial information
    doc = compare_json(capsys, str(root.parent), "--hide-failed", "--sort-by", "trial_value")
    assert [(r["trial"], r["trial_value"]) for r in doc["rows"]] == sorted([(0, v0), (1, v1)], key=lambda t: t[1])


def test_a_hydra_multirun_folder_without_trial_table_lists_its_runs(here, tmp_path, capsys):
    root = tmp_path / "multirun"
    for i, name in enumerate("ab"):
        shutil.copytree(here / name, root / str(i))
    doc = compare_json(capsys, str(root))
    assert [r["run"] for r in doc["rows"]] == [str(root / "0"), str(root / "1")]


def _one_run_sweep(here: Path, root: Path, folder: str, trials: list[dict]) -> Path:
    """A sweep directory holding run ``a`` as job folder ``folder`` and a sweep.json with ``trials``."""
    root.mkdir(parents=True)
    shutil.copytree(here / "a", root / folder)
    (root / "sweep.json").write_text(json.dumps({"kind": "optuna-sweep", "schema_version": 1, "directions": ["minimize"],
                                                 "n_trials": len(trials), "trials": trials}))
    return root


def test_a_retried_trial_owns_the_run_directory_it_shares_with_the_failed_one(here, tmp_path, capsys):
    value = report(here / "a")["objective"]["value"]
    root = _one_run_sweep(here, tmp_path / "multirun" / "s2", "0", [
        {"number": 0, "job_num": 0, "state": "FAIL", "values": None, "params": {}, "run_dir": "0"},
        {"number": 1, "job_num": 0, "state": "COMPLETE", "values": [value], "params": {}, "run_dir": "0"}])
    rows = compare_json(capsys, str(root))["rows"]
    assert [(r["trial"], r["status"]) for r in rows] == [(0, "failed"), (1, "completed")]
    assert rows[1]["run"] == str(root / "0") and rows[1]["mae"] == report(here / "a")["metrics"]["mae"]
    assert rows[0]["mae"] is None


# ---------------------------------------------------------------------------- win rates in every format (issue 16)
def test_json_with_win_rates_is_one_json_document(here, capsys):
    assert run(["a", "c", "d", "--format", "json", "--win-rates"]) == 0
    doc = json.loads(capsys.readouterr().out)  # nothing but JSON on stdout
    wr = doc["win_rates"]
    assert wr["unit"] == "held-out lake" and "Training-seed variance" in wr["unit_note"]
    group = wr["groups"][0]
    assert group["runs"] == ["a", "c", "d"] and group["adjust"] == "holm" and group["n_pairs"] == 3
    pairs = {(p["i"], p["j"]): p for p in group["pairs"]}
    assert len(pairs) == 6
    # the per-lake MAE the pairs rest on: recomputed here from the prediction files
    lake_mae = {}
    for name in ("a", "c"):
        pred = pd.read_parquet(here / name / "predictions" / "test.parquet")
        lake_mae[name] = (pred["prediction"] - pred["paddle_score"]).abs().groupby(pred["lake"].astype(str)).mean()
    d = (lake_mae["a"] - lake_mae["c"]).to_numpy()
    ac = pairs[("a", "c")]
    assert ac["mean_diff"] == pytest.approx(float(d.mean()))
    assert ac["wins"] == int((d < 0).sum()) and ac["n_lakes"] == len(d)
    assert ac["p_adjusted"] >= ac["p_value"] and ac["significant"] == (ac["p_adjusted"] < 0.05)

    assert run(["a", "c", "d", "--format", "json", "--win-rates", "--output", "c.json"]) == 0
    captured = capsys.readouterr()
    assert captured.out == ""
    assert json.loads((here / "c.json").read_text())["win_rates"]["groups"][0]["runs"] == ["a", "c", "d"]


def test_csv_win_rates_go_to_a_second_file_and_never_onto_stdout(here, capsys, tmp_path):
    with pytest.raises(KaaykoError, match="needs --output PATH") as err:
        run(["a", "c", "--format", "csv", "--win-rates"])
    assert err.value.exit_code == 2 and capsys.readouterr().out == ""
    out = tmp_path / "cmp.csv"
    assert run(["a", "c", "d", "--format", "csv", "--win-rates", "--output", str(out)]) == 0
    captured = capsys.readouterr()
    assert captured.out == "" and "cmp.win_rates.csv" in captured.err
    assert [r["run"] for r in csv.DictReader(out.open())] == ["a", "c", "d"]
    pairs = list(csv.DictReader((tmp_path / "cmp.win_rates.csv").open()))
    assert len(pairs) == 6 and {(p["run"], p["vs"]) for p in pairs} >= {("a", "c"), ("c", "a")}
    for p in pairs:
        assert float(p["p_adjusted"]) >= float(p["p_value"]) and p["adjust"] == "holm"
        assert p["significant"] in ("True", "False") and p["win_rate"] and p["hl_diff"]


def test_markdown_and_html_carry_the_win_rates(here, capsys):
    assert run(["a", "c", "d", "--format", "markdown", "--win-rates"]) == 0
    md = capsys.readouterr().out
    assert "## Win rates over held-out lakes" in md and "| run | vs | lakes |" in md and "Holm p" in md
    assert "Per-lake win rates" not in md  # no text matrix after the markdown
    assert run(["a", "c", "d", "--format", "html", "--win-rates"]) == 0
    page = capsys.readouterr().out
    parser = _Cells()
    parser.feed(page)
    parser.close()
    assert page.rstrip().endswith("</html>") and "Win-rate matrix" in page
    assert any(row[:2] == ["run", "vs"] for row in parser.rows)


def test_the_mean_interval_method_is_named_in_every_format(here, capsys, tmp_path):
    """Default t; ``--interval bca`` gives scipy's BCa bootstrap for the pair, computed here from the files."""
    import inspect

    from scipy.stats import bootstrap

    from kaayko_exp.compare.stats import BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED

    t_group = compare_json(capsys, "a", "c", "d", "--win-rates")["win_rates"]["groups"][0]
    assert t_group["interval"] == "t" and "Student-t" in t_group["interval_note"]
    bca_group = compare_json(capsys, "a", "c", "d", "--win-rates", "--interval", "bca")["win_rates"]["groups"][0]
    assert bca_group["interval"] == "bca" and "BCa bootstrap" in bca_group["interval_note"]
    assert "bench/bench_compare_intervals.py" in bca_group["interval_note"]
    lake_mae = {}
    for name in ("a", "c"):
        pred = pd.read_parquet(here / name / "predictions" / "test.parquet")
        lake_mae[name] = (pred["prediction"] - pred["paddle_score"]).abs().groupby(pred["lake"].astype(str)).mean()
    d = (lake_mae["a"] - lake_mae["c"]).to_numpy()
    seed_kw = "rng" if "rng" in inspect.signature(bootstrap).parameters else "random_state"
    ci = bootstrap((d,), np.mean, n_resamples=BOOTSTRAP_RESAMPLES, method="BCa",
                   **{seed_kw: np.random.default_rng(BOOTSTRAP_SEED)}).confidence_interval
    bca = {(p["i"], p["j"]): p for p in bca_group["pairs"]}[("a", "c")]
    t = {(p["i"], p["j"]): p for p in t_group["pairs"]}[("a", "c")]
    assert (bca["mean_ci_low"], bca["mean_ci_high"]) == pytest.approx((ci.low, ci.high), rel=1e-9)
    assert (bca["mean_ci_low"], bca["mean_ci_high"]) != pytest.approx((t["mean_ci_low"], t["mean_ci_high"]))
    again = compare_json(capsys, "a", "c", "d", "--win-rates", "--interval", "bca")["win_rates"]["groups"][0]
    assert again["pairs"] == bca_group["pairs"]  # a fixed seed: the same runs give the same intervals

    for interval, label in (("t", "t"), ("bca", "BCa")):
        out = tmp_path / f"{interval}.csv"
        assert run(["a", "c", "--format", "csv", "--win-rates", "--output", str(out), "--interval", interval]) == 0
        pairs = list(csv.DictReader((tmp_path / f"{interval}.win_rates.csv").open()))
        assert {p["interval"] for p in pairs} == {interval}
        assert run(["a", "c", "--format", "markdown", "--win-rates", "--interval", interval]) == 0
        md = capsys.readouterr().out
        assert f"| 95 % CI ({label}) |" in md
        assert ("BCa bootstrap 95 % interval" in md) == (interval == "bca")
        assert run(["a", "c", "--format", "html", "--win-rates", "--interval", interval]) == 0
        assert f"95 % CI ({label})" in capsys.readouterr().out
    with pytest.raises(SystemExit) as err:
        run(["a", "c", "--win-rates", "--interval", "percentile"])
    assert err.value.code == 2 and "invalid choice: 'percentile'" in capsys.readouterr().err


def test_help_says_why_t_is_the_default_interval(capsys):
    import re

    from kaayko_exp.compare.stats import BOOTSTRAP_RESAMPLES, INTERVAL_MEASURED

    with pytest.raises(SystemExit):
        run(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--interval {t,bca}" in text
    assert "t is the default because" in text and "bench/bench_compare_intervals.py" in text
    measured = re.findall(r"\d+\.\d+–\d+\.\d+ %", INTERVAL_MEASURED)
    assert len(measured) == 2 and all(m in text for m in measured)  # the numbers the notes print
    assert f"{BOOTSTRAP_RESAMPLES} resamples" in text


# ---------------------------------------------------------------------------- globs and skipped paths (issue 17)
def test_a_recursive_glob_does_not_flood_the_terminal(here, tmp_path):
    """The README's command over an outputs/ folder: runs (with checkpoints/, model/, predictions/ inside) and a
    date folder that holds only a log. Folders inside runs are no candidates; the rest is one line on stderr."""
    day = tmp_path / "outputs" / "2026-12-02"
    for name, time_dir in (("d", "12-00-00"), ("a", "12-00-01")):
        shutil.copytree(here / name, day / time_dir)
    (day / "12-00-00" / "checkpoints").mkdir(exist_ok=True)
    (tmp_path / "outputs" / "2026-12-03").mkdir()
    (tmp_path / "outputs" / "2026-12-03" / "train.log").write_text("refused\n")
    mae = report(here / "d")["metrics"]["mae"]
    cmd = [sys.executable, "-m", "kaayko_exp.compare", "outputs/**/", "--filter", "model=xgboost", "--filter",
           f"mae<{mae + 0.01:.4f}", "--group-by", "--format", "csv"]
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr
    rows = list(csv.DictReader(io.StringIO(proc.stdout)))  # stdout holds the CSV and nothing else
    assert [(r["run"], r["model"], float(r["mae"])) for r in rows] == [("outputs/2026-12-02/12-00-00", "xgboost", mae)]
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("skipped 1 path(s)") and "--verbose" in proc.stderr
    assert "checkpoints" not in proc.stderr and "predictions" not in proc.stderr  # folders inside runs
    verbose = subprocess.run(cmd + ["--verbose"], capture_output=True, text=True, cwd=tmp_path, timeout=300, env=env)
    assert verbose.stderr == "skipped outputs/2026-12-03: is not a run or sweep directory (no manifest.json in it or " \
                             "below it)\n"
    assert proc.stdout == verbose.stdout


# ---------------------------------------------------------------------------- trial folders (issue 16, item 20)
def test_a_requeued_trial_is_shown_in_its_real_folder(here, tmp_path, capsys):
    """Trial 10 died and was re-queued as trial 11 in job folder 10: no row names a folder that does not exist."""
    value = report(here / "a")["objective"]["value"]
    root = _one_run_sweep(here, tmp_path / "multirun" / "s3", "10", [
        {"number": 10, "job_num": 10, "state": "FAIL", "values": None, "params": {}, "run_dir": "10"},
        {"number": 11, "job_num": 10, "state": "COMPLETE", "values": [value], "params": {}, "run_dir": "10"},
        {"number": 12, "job_num": 12, "state": "FAIL", "values": None, "params": {}, "run_dir": "12"}])
    rows = compare_json(capsys, str(root))["rows"]
    assert [(r["trial"], r["status"]) for r in rows] == [(10, "failed"), (11, "completed"), (12, "failed")]
    for r in rows:
        assert Path(r["run"]).is_dir(), r  # every row names a folder that exists
    assert rows[0]["run"] == rows[1]["run"] == str(root / "10")
    assert "now holds trial 11" in rows[0]["note"] and "re-run of trial 10" in rows[1]["note"]
    assert rows[2]["run"] == str(root) and "job folder 12 was never created" in rows[2]["note"]
    assert run([str(root)]) == 0
    assert "trial-" not in capsys.readouterr().out


def test_a_report_dir_that_is_a_file_is_refused_before_anything_is_written(here, tmp_path, capsys):
    (tmp_path / "taken").write_text("x")
    with pytest.raises(KaaykoError, match="is a file") as err:
        run(["a", "c", "--format", "csv", "--output", str(tmp_path / "t.csv"), "--report", str(tmp_path / "taken")])
    assert err.value.exit_code == 2 and not (tmp_path / "t.csv").exists() and capsys.readouterr().out == ""
