"""``python -m kaayko_exp.runs``: list, status, clean, clear-cache, repair, and damaged directories."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from kaayko_exp import atomic
from kaayko_exp.runs import find_runs, parse_age
from kaayko_exp.runs.cli import main
from kaayko_exp.runs.rundir import RunDir
from kaayko_exp.training.pipeline import STAGES

REPO = Path(__file__).resolve().parents[1]

# the file each stage writes in these fake runs (dataset writes none, as in the pipeline)
ARTIFACTS = {"features": "features/feature_spec.json", "split": "split/assignment.npy", "fit": "model/model.ubj",
             "evaluate": "evaluate/results.json", "report": "report.json", "export": "model/feature_spec.json"}


def make_run(path: Path, *, status: str = "completed", model: str = "xgboost", days_old: float = 10.0,
             checkpoints: tuple[int, ...] = (20, 40), until: str = "export", rmse: float = 0.1234) -> RunDir:
    """A run directory built stage by stage with fake artifacts (no pipeline involved)."""
    run = RunDir.create(path, stages=STAGES, config_hash="h", choices={"model": model, "sample_size": "small"},
                        overrides=[])
    run.manifest["data"] = {"source": "synthetic", "rows": 5000}
    for stage in STAGES:
        run.start_stage(stage)
        if stage == "fit":
            for done in checkpoints:
                run.add_checkpoint("fit", done, 100, lambda d, n=done: (d / "model.ubj").write_bytes(b"p" * n),
                                   keep_last=5)
        if stage in ARTIFACTS:
            body = json.dumps({"objective": {"name": "test_rmse", "value": rmse}}) if stage == "report" else stage * 50
            atomic.write_text(run.path / ARTIFACTS[stage], body)
            run.record(stage, [run.path / ARTIFACTS[stage]])
        if stage == until and status != "completed":
            run.interrupt_stage(stage, 1.0)
            break
        run.finish_stage(stage, 1.25, {"model_family": model} if stage == "fit" else None)
    run.set_status(status)
    when = (dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=days_old)).isoformat(timespec="seconds")
    for ev in run.manifest["events"]:
        ev["time"] = when
    run.manifest["updated"] = when
    atomic.write_json(run.path / "manifest.json", run.manifest)  # RunDir.save() would stamp "updated" now
    return run


def files_under(path: Path) -> dict[str, bytes]:
    return {p.relative_to(path).as_posix(): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


def run_cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "kaayko_exp.runs", *args], capture_output=True, text=True,
                          env=env, cwd=REPO, timeout=60)


def test_parse_age():
    assert parse_age("7d") == 7 * 86400 and parse_age("12h") == 12 * 3600 and parse_age("30m") == 1800
    with pytest.raises(ValueError, match="7d, 12h, 30m"):
        parse_age("7 days")


def test_list_shows_one_line_per_run_including_sweeps_and_damaged(tmp_path, capsys):
    out = tmp_path / "outputs"
    make_run(out / "2025-01-01" / "10-00-00", model="histgb", rmse=0.4321)
    make_run(out / "multirun" / "2025-01-02" / "09-00-00" / "0", status="interrupted", until="fit", days_old=0.1)
    (out / "2025-01-03" / "11-00-00" / ".hydra").mkdir(parents=True)  # died before its manifest
    bad = out / "2025-01-03" / "12-00-00"
    bad.mkdir(parents=True)
    (bad / "manifest.json").write_text("{not json")
    (out / ".cache" / "entry" / ".hydra").mkdir(parents=True)  # hidden folders are not searched

    assert len(find_runs([out])) == 4
    assert main(["list", str(out)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].split()[:3] == ["STATUS", "MODEL", "SAMPLE"] and len(lines) == 5
    done = next(line for line in lines if "10-00-00" in line)
    assert done.split()[:2] == ["completed", "histgb"]
    assert "small (5,000 rows)" in done and "done" in done and "test_rmse=0.4321" in done and " 10d " in done
    sweep = next(line for line in lines if "multirun" in line)
    assert sweep.startswith("interrupted") and "fit interrupted 40/100" in sweep and " 2h " in sweep
    assert next(line for line in lines if "11-00-00" in line).startswith("damaged: no manifest.json")
    assert next(line for line in lines if "12-00-00" in line).startswith("damaged: its manifest.json is not valid JSON")


def test_status_puts_the_manifest_in_words(tmp_path, capsys):
    run = make_run(tmp_path / "r", status="interrupted", until="fit")
    assert main(["status", str(run.path)]) == 0
    text = capsys.readouterr().out
    assert "status: interrupted" in text and "choices: model=xgboost, sample_size=small" in text
    assert "  features  done             1.25 s  1 artifact" in text
    assert "  fit       interrupted      1.00 s  1 artifact" in text
    assert "  evaluate  pending" in text
    assert "  fit            40/100  checkpoints/fit/0000040" in text
    assert "events: 1" in text and "interrupted" in text.splitlines()[-2]
    assert text.strip().endswith(f"next: python train.py resume={run.path}")


def test_clean_deletes_checkpoints_of_old_completed_runs_only(tmp_path, capsys):
    out = tmp_path / "outputs"
    old = make_run(out / "a" / "old", days_old=30)
    older = make_run(out / "a" / "older", days_old=40)
    newest = make_run(out / "b" / "newest", days_old=20)
    recent = make_run(out / "b" / "recent", days_old=1)
    broken = make_run(out / "c" / "interrupted", status="interrupted", until="fit", days_old=30)
    (old.path / "checkpoints" / "fit" / ".0000060.leftover").mkdir()  # a temp dir from a kill
    before = {r.path: files_under(r.path) for r in (old, older, newest, recent, broken)}

    assert main(["clean", str(out), "--older-than", "7d", "--keep-last", "1", "--dry-run"]) == 0
    printed = capsys.readouterr().out
    assert "would delete" in printed and "nothing was deleted" in printed
    assert {r.path: files_under(r.path) for r in (old, older, newest, recent, broken)} == before

    assert main(["clean", str(out), "--older-than", "7d", "--keep-last", "1"]) == 0
    printed = capsys.readouterr().out
    for run in (old, older, newest):  # recent is the newest completed run (kept); newest's is 20 days old
        assert not (run.path / "checkpoints").exists()
        assert f"deleted {run.path / 'checkpoints' / 'fit' / '0000040'}" in printed
        reopened = RunDir.open(run.path)
        assert reopened.manifest["checkpoints"] == [] and reopened.manifest["events"][-1]["event"] == "clean"
        assert (run.path / "model" / "model.ubj").is_file() and (run.path / "report.json").is_file()
        reopened.verify()  # final artifacts untouched
    assert f"deleted {old.path / 'checkpoints' / 'fit' / '.0000060.leftover'}" in printed
    assert files_under(recent.path) == before[recent.path]
    assert files_under(broken.path) == before[broken.path]


def test_clean_models_removes_whole_old_runs(tmp_path, capsys):
    out = tmp_path / "outputs"
    old = make_run(out / "old", days_old=30)
    keep = make_run(out / "new", days_old=0.5)
    assert main(["clean", str(out), "--older-than", "1d", "--keep-last", "0", "--models"]) == 0
    assert not old.path.exists() and keep.path.is_dir() and (keep.path / "checkpoints").is_dir()


def test_clear_cache_reports_freed_bytes_and_refuses_run_folders(tmp_path, capsys):
    cache = tmp_path / ".cache"
    (cache / "abc").mkdir(parents=True)
    (cache / "abc" / "data.parquet").write_bytes(b"x" * 1000)
    (cache / "def.parquet").write_bytes(b"y" * 234)
    assert main(["clear-cache", "--cache-dir", str(cache), "--dry-run"]) == 0
    assert "would free 1234 bytes" in capsys.readouterr().out and len(list(cache.iterdir())) == 2
    assert main(["clear-cache", "--cache-dir", str(cache)]) == 0
    assert "freed 1234 bytes" in capsys.readouterr().out and list(cache.iterdir()) == []

    runs = tmp_path / "outputs"
    make_run(runs / "2025-01-01" / "r")
    assert main(["clear-cache", "--cache-dir", str(runs)]) == 2
    assert "holds run directories" in capsys.readouterr().err
    assert (runs / "2025-01-01" / "r" / "manifest.json").is_file()


def _flip_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[0] ^= 0xFF
    path.write_bytes(bytes(data))


def test_repair_marks_the_bad_stage_and_later_ones_pending(tmp_path, capsys):
    run = make_run(tmp_path / "r", checkpoints=(20, 40, 60))
    model = run.path / "model" / "model.ubj"
    _flip_byte(model)
    _flip_byte(run.path / "checkpoints" / "fit" / "0000040" / "model.ubj")
    assert main(["repair", str(run.path)]) == 0
    printed = capsys.readouterr().out
    assert "bad: model/model.ubj (modified (sha256 mismatch))" in printed
    assert "marked pending: fit, evaluate, report, export" in printed
    fixed = RunDir.open(run.path)
    assert [fixed.stage(s)["status"] for s in STAGES] == ["done"] * 3 + ["pending"] * 4
    assert all(fixed.stage(s)["artifacts"] == [] for s in STAGES[3:])
    assert fixed.manifest["status"] == "interrupted"
    assert fixed.manifest["events"][-1]["event"] == "repair"
    assert [c["done"] for c in fixed.manifest["checkpoints"]] == [20, 60]
    assert not (run.path / "checkpoints" / "fit" / "0000040").exists()
    assert model.is_file() and (run.path / "report.json").is_file()  # nothing final deleted
    fixed.verify()  # a resume's verification now passes


def test_repair_of_a_missing_late_artifact_and_of_an_intact_run(tmp_path, capsys):
    run = make_run(tmp_path / "r")
    (run.path / "report.json").unlink()
    assert main(["repair", str(run.path), "--dry-run"]) == 0
    assert "would mark pending: report, export" in capsys.readouterr().out
    assert RunDir.open(run.path).manifest["status"] == "completed"
    assert main(["repair", str(run.path)]) == 0
    fixed = RunDir.open(run.path)
    assert [fixed.stage(s)["status"] for s in STAGES] == ["done"] * 5 + ["pending"] * 2

    intact = make_run(tmp_path / "ok")
    before = (intact.path / "manifest.json").read_bytes()
    assert main(["repair", str(intact.path)]) == 0
    assert "nothing to repair" in capsys.readouterr().out
    assert (intact.path / "manifest.json").read_bytes() == before


def test_damaged_directories_exit_2_with_one_paragraph(tmp_path):
    no_manifest = tmp_path / "dead"
    (no_manifest / ".hydra").mkdir(parents=True)
    result = run_cli("status", str(no_manifest))
    assert result.returncode == 2 and result.stdout == ""
    assert "no manifest.json" in result.stderr and len(result.stderr.strip().splitlines()) == 1

    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "manifest.json").write_text('{"kind": "kaayko-exp-run", ')
    result = run_cli("repair", str(bad))
    assert result.returncode == 2 and "cannot be repaired" in result.stderr and "fresh run" in result.stderr
    assert (bad / "manifest.json").read_text() == '{"kind": "kaayko-exp-run", '

    result = run_cli("status", str(tmp_path / "nowhere"))
    assert result.returncode == 2 and "does not exist" in result.stderr

    result = run_cli("clean", "--older-than", "soon")
    assert result.returncode == 2 and "7d, 12h, 30m" in result.stderr


def test_status_and_repair_hints_use_the_path_as_typed_from_the_project_root(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    make_run(Path("outputs/2025-01-01/10-00-00"), status="interrupted", until="fit")
    assert main(["status", "outputs/2025-01-01/10-00-00"]) == 0
    assert capsys.readouterr().out.strip().endswith("next: python train.py resume=outputs/2025-01-01/10-00-00")
    (tmp_path / "outputs/2025-01-01/10-00-00/features/feature_spec.json").write_text("changed")
    assert main(["repair", "./outputs/2025-01-01/10-00-00"]) == 0
    assert capsys.readouterr().out.strip().endswith(
        "rebuild with: python train.py resume=outputs/2025-01-01/10-00-00")


def test_repair_refuses_a_run_whose_lock_is_held(tmp_path, capsys):
    run = make_run(tmp_path / "r")
    _flip_byte(run.path / "model" / "model.ubj")
    before = (run.path / "manifest.json").read_bytes()
    owner = RunDir.open(run.path)
    owner.lock()  # another open file description: conflicts like another process would
    try:
        assert main(["repair", str(run.path)]) == 2
        assert "being written by a live process" in capsys.readouterr().err
        assert (run.path / "manifest.json").read_bytes() == before
    finally:
        owner.release()
    assert main(["repair", str(run.path)]) == 0
    assert RunDir.open(run.path).manifest["status"] == "interrupted"


def test_repair_judges_a_remote_owner_by_its_own_heartbeat_interval(tmp_path, capsys):
    run = make_run(tmp_path / "r", status="running", until="fit")
    beat = (dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=100)).isoformat()
    run.manifest["owner"] = {"pid": 1, "host": "another-host", "heartbeat": beat, "heartbeat_seconds": 60}
    atomic.write_json(run.path / "manifest.json", run.manifest)
    _flip_byte(run.path / "model" / "model.ubj")
    assert main(["repair", str(run.path)]) == 2  # 100 s without a beat is normal for a 60 s interval
    assert "being written by a live process" in capsys.readouterr().err
    run.manifest["owner"]["heartbeat_seconds"] = 20  # 100 s > 3 × 20 s: that owner is gone
    atomic.write_json(run.path / "manifest.json", run.manifest)
    assert main(["repair", str(run.path)]) == 0


def test_clear_cache_counts_datasets_and_leaves_one_being_built(tmp_path, capsys):
    import pandas as pd

    from kaayko_exp.data.cache import entry_lock, get_or_build

    cache = tmp_path / "cache"
    for key in ("k1", "k2", "k3"):
        get_or_build(cache, key, lambda: pd.DataFrame({"a": range(100)}))
    datasets = cache / "datasets"
    assert sorted(p.name for p in datasets.iterdir()) == sorted(f"{k}.{s}" for k in ("k1", "k2", "k3")
                                                                 for s in ("json", "lock", "parquet"))
    (datasets / ".k1.parquet.abc123.tmp").write_bytes(b"t" * 10)  # a torn write's leftover
    (cache / "stray.txt").write_bytes(b"s" * 5)
    freed_expected = sum(p.stat().st_size for p in (*datasets.iterdir(), cache / "stray.txt")
                         if not p.name.startswith("k3."))
    with entry_lock(datasets / "k3.lock") as held:  # a run is building k3 right now
        assert held
        assert main(["clear-cache", "--cache-dir", str(cache)]) == 0
    out = capsys.readouterr().out
    assert f"freed {freed_expected} bytes" in out
    assert "2 cached datasets, 1 other item" in out and "in use by a running build: k3" in out
    assert sorted(p.name for p in datasets.iterdir()) == ["k3.json", "k3.lock", "k3.parquet"]
    assert not (cache / "stray.txt").exists()

    assert main(["clear-cache", "--cache-dir", str(cache)]) == 0
    assert "1 cached dataset" in capsys.readouterr().out and list(cache.iterdir()) == []
    _, info = get_or_build(cache, "k3", lambda: pd.DataFrame({"a": range(3)}))
    assert info["hit"] is False  # rebuilt, under a fresh lock file


def test_list_aligns_every_column_and_sorts_trial_folders_by_number(tmp_path, capsys):
    sweep = tmp_path / "outputs" / "multirun" / "2025-01-02" / "09-00-00"
    for trial in ("2", "10", "1"):
        make_run(sweep / trial, days_old=0.1)
    long = make_run(sweep / "11", status="interrupted", until="fit", checkpoints=(), days_old=0.1)
    long.add_checkpoint("ensemble_member_random_forest", 120, 300, lambda d: (d / "m.skops").write_bytes(b"m"),
                        keep_last=5)
    assert main(["list", str(tmp_path / "outputs")]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert [line.rsplit("/", 1)[1] for line in lines[1:]] == ["1", "2", "10", "11"]
    assert "fit interrupted ensemble_member_random_forest 120/300" in lines[-1]
    for column in ("PROGRESS", "METRIC", "PATH"):  # each column starts where its heading does, on every line
        at = lines[0].index(column)
        assert all(line[at - 1] == " " and line[at] != " " for line in lines[1:]), column
    end = lines[0].index("AGE") + 3  # the age is right-aligned under its heading
    assert all(line[end - 1] != " " and line[end] == " " for line in lines[1:])
    assert {line.index(str(sweep)) for line in lines[1:]} == {lines[0].index("PATH")}


def test_repair_names_a_file_that_two_stages_record_once(tmp_path, capsys):
    run = make_run(tmp_path / "r")
    # as in the pipeline: the export stage records the fitted model again (model/model.ubj is fit's file)
    run.manifest["stages"]["export"]["artifacts"] += run.manifest["stages"]["fit"]["artifacts"]
    atomic.write_json(run.path / "manifest.json", run.manifest)
    _flip_byte(run.path / "model" / "model.ubj")
    assert main(["repair", str(run.path)]) == 0
    printed = capsys.readouterr().out
    assert printed.count("model/model.ubj") == 1 and "bad: model/model.ubj (modified" in printed


def test_clear_cache_and_clean_say_deleted_after_deleting(tmp_path, capsys):
    cache = tmp_path / ".cache"
    cache.mkdir()
    (cache / "stray.parquet").write_bytes(b"y" * 10)
    assert main(["clear-cache", "--cache-dir", str(cache), "--dry-run"]) == 0
    assert f"would delete {cache / 'stray.parquet'} (10 B)" in capsys.readouterr().out
    assert main(["clear-cache", "--cache-dir", str(cache)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert f"deleted {cache / 'stray.parquet'} (10 B)" in out and not any(x.startswith("delete ") for x in out)
    old = make_run(tmp_path / "outputs" / "old", days_old=30)
    assert main(["clean", str(tmp_path / "outputs"), "--keep-last", "0", "--models"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"deleted {old.path}/ (whole run") and not old.path.exists()
