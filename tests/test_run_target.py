"""Which directory a command may write to, decided before Hydra writes anything (issue 16, items 1 and 2).

A fresh start into an earlier run's directory, a resume with a mistaken target (a folder inside a run, a date
folder, an empty folder) and a resume whose overrides would change the run are refused with one paragraph and
exit 2, and leave every file of the project as it was. A resume never rewrites the run's saved config, and a
saved config changed since the start is refused. Commands are run as the README writes them, from a project
root, with relative run paths.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from omegaconf import OmegaConf, open_dict
from predict_helpers import held_out, row_dict
from runhelpers import FAST, cli, compose_train, manifest

from kaayko_exp.errors import ConfigError, RunDirError
from kaayko_exp.training.target import check

RUN = "outputs/2026-01-01/10-00-00"
#: the xgboost default depth the interrupted run was started with (conf/model/xgboost.yaml)
DEPTH = OmegaConf.load(Path(__file__).resolve().parents[1] / "conf" / "model" / "xgboost.yaml").params.max_depth
XGB = ["model=xgboost", "model.params.n_estimators=40", "checkpointing.every=10"]


def _snapshot(root):
    """Every path under ``root`` with the bytes of each file."""
    return {str(p.relative_to(root)): (p.read_bytes() if p.is_file() else None) for p in sorted(root.rglob("*"))}


def _refused(out, needle):
    assert out.returncode == 2, out.stderr
    assert needle in out.stderr, out.stderr
    assert "Traceback" not in out.stderr and len(out.stderr.strip().splitlines()) == 1, out.stderr


@pytest.fixture(scope="module")
def interrupted(tmp_path_factory):
    """A run SIGKILLed mid-fit (after its checkpoint at round 20), in a project root of its own."""
    project = tmp_path_factory.mktemp("interrupted")
    out = cli("tests/kill_train.py", ["fit:25", *FAST, *XGB, f"hydra.run.dir={RUN}",
                                      f"cache_dir={project / 'cache'}"], cwd=project)
    assert out.returncode == -9, out.stderr
    assert manifest(project / RUN)["status"] == "running"
    return project


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    project = tmp_path_factory.mktemp("finished")
    out = cli("train.py", [*FAST, "model=ridge", f"hydra.run.dir={RUN}", f"cache_dir={project / 'cache'}"],
              cwd=project)
    assert out.returncode == 0, out.stderr
    return project


def _copy(project, tmp_path):
    shutil.copytree(project, tmp_path / "project")
    return tmp_path / "project"


def test_a_fresh_start_into_a_run_is_refused_before_hydra_writes_and_a_resume_keeps_the_saved_config(
        interrupted, tmp_path):
    project = _copy(interrupted, tmp_path)
    saved = (project / RUN / ".hydra" / "config.yaml").read_bytes()
    before = _snapshot(project)

    out = cli("train.py", [f"hydra.run.dir={RUN}", "model.params.max_depth=2"], cwd=project)
    _refused(out, "already holds a run")
    assert _snapshot(project) == before  # the saved config (and the log) untouched

    out = cli("train.py", [f"resume={RUN}", f"hydra.run.dir={RUN}", "model.params.max_depth=2"], cwd=project)
    _refused(out, f"model.params.max_depth: {DEPTH} -> 2")
    assert _snapshot(project) == before

    out = cli("train.py", [f"resume={RUN}", f"hydra.run.dir={RUN}"], cwd=project)  # the run's own dir: accepted
    assert out.returncode == 0, out.stderr
    man = manifest(project / RUN)
    assert man["status"] == "completed" and [e["event"] for e in man["events"]].count("resume") == 1
    assert (project / RUN / ".hydra" / "config.yaml").read_bytes() == saved
    hydra_files = {k: v for k, v in _snapshot(project).items() if "/.hydra" in k}
    assert hydra_files == {k: v for k, v in before.items() if "/.hydra" in k}
    out = cli("train.py", [f"resume={RUN}"], cwd=project)  # the run is still whole: a later resume has nothing to do
    assert out.returncode == 0 and "already complete" in out.stdout, out.stderr


def test_a_saved_config_changed_since_the_start_is_refused_at_resume(interrupted, tmp_path):
    project = _copy(interrupted, tmp_path)
    config = project / RUN / ".hydra" / "config.yaml"
    text = config.read_text()
    assert DEPTH != 2 and f"max_depth: {DEPTH}\n" in text
    config.write_text(text.replace(f"max_depth: {DEPTH}\n", "max_depth: 2\n"))
    before = _snapshot(project)
    out = cli("train.py", [f"resume={RUN}"], cwd=project)
    _refused(out, "its saved config .hydra/config.yaml was changed since the run started")
    assert _snapshot(project) == before


MISTAKES = [  # resume= targets a user may type by mistake, and what the refusal says
    (f"{RUN}/model", f"is a folder inside the run {RUN}"),
    ("outputs/2026-01-01", f"holds runs but is not one itself. Nothing was changed. Pass one of them, e.g. {RUN}"),
    ("outputs/2026-01-01/", "holds runs but is not one itself"),
    ("empty", "empty is not a usable run directory: it has no manifest.json"),
    ("outputs/2026-01-02/10-00-00", "no such run directory"),
]


def test_a_mistaken_resume_target_writes_nothing_and_the_run_still_predicts(finished, tmp_path):
    project = _copy(finished, tmp_path)
    (project / "empty").mkdir()
    before = _snapshot(project)
    for target, needle in MISTAKES:
        _refused(cli("train.py", [f"resume={target}"], cwd=project), needle)
        assert _snapshot(project) == before, target
    row = row_dict(held_out(project / RUN), 0)
    out = cli("predict.py", [f"run={RUN}", "row=-", "format=json"], cwd=project, input=json.dumps(row))
    assert out.returncode == 0, out.stderr
    assert "paddle_score" in json.loads(out.stdout)


def test_a_refused_resume_of_a_finished_run_writes_nothing_not_even_its_log(finished, tmp_path):
    project = _copy(finished, tmp_path)
    before = _snapshot(project)
    for args, needle in ((["seed=7"], "seed: 42 -> 7"),
                         (["hydra.run.dir=outputs/elsewhere"], "hydra.run.dir=outputs/elsewhere cannot be given"),
                         (["hydra.output_subdir=.hydra"], "hydra.output_subdir=.hydra cannot be given")):
        _refused(cli("train.py", [f"resume={RUN}", *args], cwd=project), needle)
        assert _snapshot(project) == before, args


def test_a_resume_set_outside_the_command_line_is_refused_before_hydra_writes(tmp_path):
    cfg = compose_train([f"resume={tmp_path}"])  # as a config file or preset would set it: Hydra's default run dir
    with pytest.raises(ConfigError, match="Give resume= on the command line"):
        check(cfg)
    cfg = compose_train([f"resume={tmp_path}", f"hydra.run.dir={tmp_path}", "hydra.output_subdir=null"])
    check(cfg)  # what resume_argv makes of resume=<dir>
    (tmp_path / ".hydra").mkdir()
    cfg = compose_train([f"hydra.run.dir={tmp_path}"])
    with pytest.raises(RunDirError, match="already holds .hydra from an earlier start"):
        check(cfg)
    with open_dict(cfg):
        cfg.hydra.run.dir = str(tmp_path / "new")
    check(cfg)
