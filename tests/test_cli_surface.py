"""What a user sees at the command line: help, `--cfg job`, failed starts, real data, plain piped output."""

from __future__ import annotations

import logging

import yaml
from runhelpers import ROOT, cli, manifest

from kaayko_exp.runs.discover import find_runs
from kaayko_exp.runs.rundir import RunDir
from kaayko_exp.training.failed_start import tidy
from kaayko_exp.training.pipeline import STAGES

SAMPLE = ROOT / "tests" / "data" / "kaayko_sample"
QUICK = ["plots=false", "evaluation.permutation_repeats=1", "evaluation.permutation_max_rows=500"]


def test_predict_help_is_its_own():
    out = cli("predict.py", ["--help"])
    assert out.returncode == 0
    for word in ("kaayko-exp predict", "Examples", "run=", "input=", "row=", "serve.port", "safety=kaayko|kaayko_original|off"):
        assert word in out.stdout, word
    for training_only in ("sample_size", "checkpointing", "Config groups"):
        assert training_only not in out.stdout, training_only


def test_cfg_job_shows_the_preset_values():
    out = cli("train.py", ["experiment=xgboost_large", "--cfg", "job"])
    assert out.returncode == 0, out.stderr
    cfg = yaml.safe_load(out.stdout)
    assert cfg["evaluation"]["cv_folds"] == 5 and cfg["sample_size"]["name"] == "large"
    assert cfg["evaluation"]["objective"] == "val_rmse"


def _leftovers(root):
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.name in (".hydra", "train.log", "manifest.json"))


def test_config_errors_after_hydra_started_leave_no_run(tmp_path):
    for args, needle in ((["evaluation.objective=test_rmse"], "never optimised"),
                         (["+modle=xgboost"], "Did you mean 'model'"),
                         (["data.global_share=2"], "must be a number from 0 to 1")):
        out = cli("train.py", args, cwd=tmp_path)  # the default run dir: outputs/<date>/<time> under the cwd
        assert out.returncode == 2, out.stderr
        assert needle in out.stderr and "Traceback" not in out.stderr
        assert _leftovers(tmp_path) == []
        assert list(tmp_path.iterdir()) == []  # no run, not even the empty outputs/<date> folder Hydra made
    (tmp_path / "outputs" / "keep.txt").parent.mkdir()
    (tmp_path / "outputs" / "keep.txt").write_text("mine")
    assert cli("train.py", ["evaluation.objective=test_rmse"], cwd=tmp_path).returncode == 2
    assert sorted(p.name for p in (tmp_path / "outputs").iterdir()) == ["keep.txt"]  # others' files stay
    assert find_runs([tmp_path / "outputs"]) == []


def test_a_data_error_in_the_first_stage_leaves_no_failed_run(tmp_path):
    out = cli("train.py", ["data=kaayko_csv", f"data.path={SAMPLE}", "sample_size=small", "hydra.run.dir=runs/a"],
              cwd=tmp_path)
    assert out.returncode == 2, out.stderr
    assert "sample_size=small keeps" in out.stderr and "sample_size=complete" in out.stderr
    assert "held no results, so it was removed" in out.stderr
    assert not (tmp_path / "runs" / "a").exists()
    assert _leftovers(tmp_path) == []


def test_the_readme_real_data_form_trains_on_every_row_with_plain_output(tmp_path):
    run_dir = tmp_path / "real"
    out = cli("train.py", ["data=kaayko_csv", "data.path=tests/data/kaayko_sample", "model=rule", *QUICK,
                           f"hydra.run.dir={run_dir}", f"cache_dir={tmp_path / 'cache'}"])
    assert out.returncode == 0, out.stderr
    man = manifest(run_dir)
    assert man["data"]["rows"] == 10_848 and man["config"]["choices"]["sample_size"] == "complete"
    assert "\x1b[" not in out.stdout and "\x1b[" not in out.stderr  # piped: no colour codes
    assert "run directory:" in out.stdout


def _failed_run(path, stage="dataset", artifact=None):
    (path / ".hydra").mkdir(parents=True)
    for name in ("config.yaml", "hydra.yaml", "overrides.yaml"):
        (path / ".hydra" / name).write_text("{}\n")
    run = RunDir.create(path, stages=STAGES, config_hash="h", choices={}, overrides=[])
    run.start_stage(stage)
    if artifact:
        (path / artifact).parent.mkdir(parents=True, exist_ok=True)
        (path / artifact).write_text("x")
        run.record(stage, [path / artifact])
    run.interrupt_stage(stage, 0.1, status="failed")
    run.set_status("failed", stage=stage, error="DataError: x")
    return run


def test_tidy_removes_only_runs_with_nothing_to_keep(tmp_path):
    early = tmp_path / "early"
    _failed_run(early, "features", "features/feature_spec.json")
    log_file = logging.FileHandler(early / "train.log")  # as Hydra's job logging opens it
    logging.getLogger().addHandler(log_file)
    try:
        assert "removed" in tidy(early, ".hydra")
    finally:
        logging.getLogger().removeHandler(log_file)
        log_file.close()
    assert not early.exists()  # train.log (opened by the handler), .hydra/, manifest, the features artifact

    stray = tmp_path / "stray"
    _failed_run(stray)
    (stray / "notes.txt").write_text("mine")
    assert tidy(stray, ".hydra") is None
    assert (stray / "manifest.json").exists() and (stray / "notes.txt").exists()

    late = tmp_path / "late"
    _failed_run(late, "fit", "model/model.ubj")
    assert tidy(late, ".hydra") is None and (late / "model" / "model.ubj").exists()

    resumed = tmp_path / "resumed"  # a resume: Hydra wrote no config files, so nothing there is known to be new
    _failed_run(resumed)
    assert tidy(resumed, None) is None and (resumed / "manifest.json").exists()

    before = tmp_path / "before"  # a config error before the manifest: only Hydra's files go
    (before / ".hydra").mkdir(parents=True)
    (before / ".hydra" / "config.yaml").write_text("{}\n")
    (before / "data.csv").write_text("a\n")
    assert tidy(before, ".hydra") is None
    assert not (before / ".hydra").exists() and (before / "data.csv").exists()
