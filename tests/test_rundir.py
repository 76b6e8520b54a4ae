"""RunDir: manifest creation, atomic updates, artifact verification, ownership, checkpoints."""

import json
import os
import subprocess
import sys

import pytest

from kaayko_exp.errors import RunDirError
from kaayko_exp.runs.rundir import MANIFEST, RunDir
from kaayko_exp.training.pipeline import STAGES


def make_run(tmp_path):
    return RunDir.create(tmp_path / "run", stages=STAGES, config_hash="abc", choices={"model": "xgboost"}, overrides=[])


def test_create_writes_a_versioned_manifest_with_every_stage(tmp_path):
    run = make_run(tmp_path)
    data = json.loads((run.path / MANIFEST).read_text())
    assert data["schema_version"] == 1
    assert list(data["stages"]) == list(STAGES)
    assert all(s["status"] == "pending" for s in data["stages"].values())
    assert RunDir.open(run.path).manifest["run_id"] == data["run_id"]


def test_create_refuses_a_directory_that_already_holds_a_run(tmp_path):
    run = make_run(tmp_path)
    with pytest.raises(RunDirError, match="already holds a run"):
        RunDir.create(run.path, stages=STAGES, config_hash="x", choices={}, overrides=[])


def test_recorded_artifact_verifies_and_detects_changes(tmp_path):
    run = make_run(tmp_path)
    f = run.path / "model" / "m.bin"
    f.parent.mkdir()
    f.write_bytes(b"0123456789")
    run.record("fit", [f])
    run.verify()
    f.write_bytes(b"0123456789"[:5])
    with pytest.raises(RunDirError, match="truncated"):
        run.verify(["fit"])
    f.write_bytes(b"0123456780")
    with pytest.raises(RunDirError, match="sha256"):
        RunDir.open(run.path).verify()
    f.unlink()
    with pytest.raises(RunDirError, match="missing"):
        run.verify()


@pytest.mark.parametrize("content,match", [(None, "no manifest.json"), (b"{not json", "not valid JSON"),
                                           (b'{"kind": "other"}', "not a kaayko-exp run")])
def test_damaged_manifests_give_clear_errors(tmp_path, content, match):
    d = tmp_path / "r"
    d.mkdir()
    if content is not None:
        (d / MANIFEST).write_bytes(content)
    with pytest.raises(RunDirError, match=match):
        RunDir.open(d)


def test_open_refuses_missing_directory(tmp_path):
    with pytest.raises(RunDirError, match="does not exist"):
        RunDir.open(tmp_path / "nope")


def test_checkpoints_keep_last_and_final(tmp_path):
    run = make_run(tmp_path)

    def writer(tag):
        return lambda d: (d / "state.txt").write_text(tag)

    for done in (10, 20, 30):
        run.add_checkpoint("fit", done, 100, writer(str(done)), keep_last=2)
    run.add_checkpoint("fit/member", 5, 5, writer("m"), final=True, keep_last=1)
    kept = sorted(c["done"] for c in run.manifest["checkpoints"] if c["key"] == "fit")
    assert kept == [20, 30]
    assert not (run.path / "checkpoints" / "fit" / "0000010").exists()
    path, done = run.path / run.latest_checkpoint("fit")["path"], run.latest_checkpoint("fit")["done"]
    assert done == 30 and (path / "state.txt").read_text() == "30"
    (path / "state.txt").write_text("tampered")
    with pytest.raises(RunDirError):
        run.latest_checkpoint("fit")


def test_claim_refuses_a_live_owner(tmp_path):
    run = make_run(tmp_path)
    child = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    try:
        import psutil

        run.manifest["owner"] = {"pid": child.pid, "host": __import__("socket").gethostname(),
                                 "process_start": psutil.Process(child.pid).create_time(), "heartbeat": "x"}
        run.save()
        with pytest.raises(RunDirError, match="another live process"):
            RunDir.open(run.path).claim(heartbeat_seconds=0)
    finally:
        child.communicate(b"")
    other = RunDir.open(run.path)
    other.claim(heartbeat_seconds=0)  # the owner is gone: the claim succeeds
    assert other.manifest["owner"]["pid"] == os.getpid()


def test_a_kill_during_a_checkpoint_write_leaves_the_previous_manifest(tmp_path):
    run = make_run(tmp_path)
    run.add_checkpoint("fit", 10, 100, lambda d: (d / "s").write_text("10"))
    code = (  # the write lands, then the process is killed before the checkpoint is renamed into place
        "import os, signal; from kaayko_exp.runs.rundir import RunDir\n"
        f"r = RunDir.open({str(run.path)!r})\n"
        "def write(d):\n"
        "    (d / 's').write_text('20')\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
        "r.add_checkpoint('fit', 20, 100, write)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code])
    assert proc.returncode == -9
    after = RunDir.open(run.path)
    assert after.latest_checkpoint("fit")["done"] == 10
    assert not (run.path / "checkpoints" / "fit" / "0000020").exists()


def test_a_relative_run_path_records_artifacts_once_and_is_shown_as_typed(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    RunDir.create("outputs/2025-01-01/10-00-00", stages=STAGES, config_hash="abc", choices={}, overrides=[])
    run = RunDir.open("outputs/2025-01-01/10-00-00")  # the README's form, relative to the project root
    assert run.path == tmp_path / "outputs" / "2025-01-01" / "10-00-00"
    model = run.path / "model" / "model.ubj"
    model.parent.mkdir()
    model.write_bytes(b"booster")
    run.record("fit", [model])
    run.record("export", ["model/model.ubj"])  # a relative artifact path is relative to the run
    assert [a["path"] for a in run.artifacts(["fit", "export"])] == ["model/model.ubj"] * 2
    RunDir.open("outputs/2025-01-01/10-00-00").verify()
    assert run.shown == "outputs/2025-01-01/10-00-00"
    monkeypatch.chdir(tmp_path / "outputs")
    assert run.shown == "2025-01-01/10-00-00"
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    assert run.shown == str(tmp_path / "outputs" / "2025-01-01" / "10-00-00")  # not below the cwd: absolute


def test_only_one_of_two_claims_of_a_dead_run_proceeds(tmp_path):
    run = make_run(tmp_path)
    run.manifest["owner"] = {"pid": 2**22 + 7, "host": "gone", "heartbeat": "2000-01-01T00:00:00+00:00"}
    run.save()  # a killed owner: status running, nobody holds the lock
    first, second = RunDir.open(run.path), RunDir.open(run.path)
    first.claim(heartbeat_seconds=0)
    try:
        with pytest.raises(RunDirError, match="being written by another live process"):
            second.claim(heartbeat_seconds=0)
        first.event("fit-progress", done=10)
    finally:
        first.release()
    second.claim(heartbeat_seconds=0)  # the lock is free again
    try:
        # the second claim decided on what the first owner last wrote, not on its stale copy
        assert [e["event"] for e in second.manifest["events"]] == ["fit-progress"]
        assert json.loads((run.path / MANIFEST).read_text())["events"][0]["event"] == "fit-progress"
    finally:
        second.release()


def test_claim_records_the_heartbeat_interval_that_liveness_is_judged_by(tmp_path):
    import datetime as dt

    run = make_run(tmp_path)
    run.claim(heartbeat_seconds=0)
    run.release()
    assert run.manifest["owner"]["heartbeat_seconds"] == 0
    beat = (dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=100)).isoformat()
    remote = {"pid": 1, "host": "elsewhere", "heartbeat": beat}
    assert RunDir.owner_alive({**remote, "heartbeat_seconds": 60})  # 100 s < 3 × 60 s: still alive
    assert not RunDir.owner_alive({**remote, "heartbeat_seconds": 10})
    assert not RunDir.owner_alive(remote, 10)  # records without an interval: the caller's default


def test_rewriting_a_recorded_checkpoint_never_breaks_the_one_the_manifest_points_at(tmp_path):
    run = make_run(tmp_path)
    run.add_checkpoint("fit", 10, 100, lambda d: (d / "s").write_text("old"))
    code = (
        "import os, signal\n"
        "from kaayko_exp.runs.rundir import RunDir\n"
        f"r = RunDir.open({str(run.path)!r})\n"
        "RunDir.save = lambda self: os.kill(os.getpid(), signal.SIGKILL)  # killed before the manifest write\n"
        "r.add_checkpoint('fit', 10, 100, lambda d: (d / 's').write_text('new'))\n"
    )
    assert subprocess.run([sys.executable, "-c", code]).returncode == -9
    cp = RunDir.open(run.path).latest_checkpoint("fit")  # verifies the recorded files
    assert (run.path / cp["path"] / "s").read_text() == "old"

    again = RunDir.open(run.path)
    again.add_checkpoint("fit", 10, 100, lambda d: (d / "s").write_text("new"))
    cp = RunDir.open(run.path).latest_checkpoint("fit")
    assert (run.path / cp["path"] / "s").read_text() == "new"
    # the old copy and the killed writer's copy are gone once the manifest points at the new one
    assert [p.name for p in (run.path / "checkpoints" / "fit").iterdir()] == [cp["path"].rsplit("/", 1)[1]]


def test_a_stage_start_is_written_with_the_stage_s_next_save_not_by_itself(tmp_path):
    # one fsync'd manifest write less per stage (7 a trial in a sweep); the start still reaches the disk with the
    # stage's first artifact, checkpoint, end or interruption, and a stage killed before reads as pending
    run = make_run(tmp_path)
    before = (run.path / MANIFEST).read_bytes()
    run.start_stage("dataset")
    assert (run.path / MANIFEST).read_bytes() == before
    assert json.loads(before)["stages"]["dataset"]["status"] == "pending"
    f = run.path / "data.bin"
    f.write_bytes(b"x")
    run.record("dataset", [f])
    run.interrupt_stage("dataset", 0.5)
    on_disk = json.loads((run.path / MANIFEST).read_text())["stages"]["dataset"]
    assert on_disk["status"] == "interrupted" and on_disk["started"]
    assert [a["path"] for a in on_disk["artifacts"]] == ["data.bin"]


def _count_saves(run, monkeypatch):
    saves = []
    real = RunDir.save
    monkeypatch.setattr(RunDir, "save", lambda self: (saves.append(json.loads(json.dumps(self.manifest))),
                                                      real(self))[1])
    return saves


def test_a_running_stage_s_artifacts_are_saved_once_with_its_end(tmp_path, monkeypatch):
    # record() inside a running stage is superseded moments later by the stage's end (or interruption), which
    # writes the same hashes: one fsync'd manifest per stage instead of two or three (record, adopt, finish)
    run = make_run(tmp_path)
    saves = _count_saves(run, monkeypatch)
    model = run.path / "model" / "m.bin"
    model.parent.mkdir()
    model.write_bytes(b"model")
    run.start_stage("fit")
    run.record("fit", [model])
    run.finish_stage("fit", 1.0)
    spec = run.path / "model" / "spec.json"
    spec.write_text("{}")
    run.start_stage("export")
    run.record("export", [spec])
    run.adopt("export", "fit")
    run.finish_stage("export", 0.1)
    assert len(saves) == 2
    on_disk = json.loads((run.path / MANIFEST).read_text())["stages"]
    assert on_disk["fit"]["status"] == "done" and [a["path"] for a in on_disk["fit"]["artifacts"]] == ["model/m.bin"]
    assert sorted(a["path"] for a in on_disk["export"]["artifacts"]) == ["model/m.bin", "model/spec.json"]
    run.verify()


def test_artifacts_recorded_outside_a_running_stage_are_saved_at_once(tmp_path, monkeypatch):
    run = make_run(tmp_path)
    saves = _count_saves(run, monkeypatch)
    f = run.path / "split.npy"
    f.write_bytes(b"s")
    run.record("split", [f])
    assert len(saves) == 1
    on_disk = json.loads((run.path / MANIFEST).read_text())["stages"]["split"]
    assert [a["path"] for a in on_disk["artifacts"]] == ["split.npy"]


def test_package_versions_are_looked_up_once_per_process(tmp_path, monkeypatch):
    # every sweep trial creates a manifest: the installed versions do not change between them
    from importlib import metadata

    make_run(tmp_path)
    looked_up = []
    real = metadata.version
    monkeypatch.setattr(metadata, "version", lambda name: (looked_up.append(name), real(name))[1])
    second = RunDir.create(tmp_path / "run2", stages=STAGES, config_hash="abc", choices={}, overrides=[])
    assert looked_up == []
    assert second.manifest["package"]["xgboost"] == real("xgboost")
    second.manifest["package"]["xgboost"] = "edited"  # each manifest holds its own copy
    assert make_run(tmp_path / "third").manifest["package"]["xgboost"] == real("xgboost")
