"""Per-run write costs that repeat in every sweep trial (issue 16, item 10): quick stages' ends share manifest
writes, and the export stage copies the features stage's files instead of encoding them again."""

from __future__ import annotations

from runhelpers import FAST, cli, manifest, train_in_process
from test_rundir import _count_saves

from kaayko_exp.data.support import Support
from kaayko_exp.features.spec import FeatureSpec
from kaayko_exp.runs.rundir import RunDir
from kaayko_exp.training import pipeline
from kaayko_exp.training.pipeline import STAGES


def _snapshots(monkeypatch) -> list[dict]:
    """Every manifest RunDir.save writes from now on, as written."""
    return _count_saves(None, monkeypatch)


def _count_encodings(monkeypatch) -> dict[str, int]:
    """How often the feature spec and the support are encoded (``save``) from now on."""
    calls = {"spec": 0, "support": 0}

    def count(kind, real):
        def save(self, path):
            calls[kind] += 1
            return real(self, path)
        return save

    monkeypatch.setattr(FeatureSpec, "save", count("spec", FeatureSpec.save))
    monkeypatch.setattr(Support, "save", count("support", Support.save))
    return calls


def test_quick_stage_ends_share_one_manifest_write_and_every_end_reaches_the_disk(tmp_path, monkeypatch):
    ends = []  # (stage, seconds, written at once) for each stage end
    real = RunDir.finish_stage

    def finish(self, name, seconds, detail=None, *, save=True):
        ends.append((name, seconds, save))
        return real(self, name, seconds, detail, save=save)

    monkeypatch.setattr(RunDir, "finish_stage", finish)
    _, run_dir = train_in_process(tmp_path, ["model=rule"])
    man = manifest(run_dir)
    assert man["status"] == "completed"
    assert all(man["stages"][s]["status"] == "done" and man["stages"][s]["seconds"] is not None for s in STAGES)
    # today's code wrote each of the 7 stage ends on its own; now the fit's end is written at once, other ends
    # once the stages not yet written add up to DURABLE_AFTER_SECONDS (the rest ride on a later save)
    assert [name for name, _, _ in ends] == list(STAGES)
    assert sum(saved for _, _, saved in ends) < len(STAGES)
    unsaved = 0.0
    for name, seconds, saved in ends:
        unsaved += seconds
        assert saved == (name in pipeline.ALWAYS_DURABLE or unsaved >= pipeline.DURABLE_AFTER_SECONDS), name
        unsaved = 0.0 if saved else unsaved


def test_a_stage_that_took_long_enough_is_written_at_its_end(tmp_path, monkeypatch):
    monkeypatch.setattr(pipeline, "DURABLE_AFTER_SECONDS", 0.0)  # every stage counts as long: each end is saved
    saves = _snapshots(monkeypatch)
    train_in_process(tmp_path, ["model=rule"])
    running = [s for s in saves if s["status"] == "running"]
    for stage in STAGES:  # a save shows the stage done before the next one is done
        assert any(s["stages"][stage]["status"] == "done" and
                   all(s["stages"][later]["status"] != "done" for later in STAGES[STAGES.index(stage) + 1:])
                   for s in running), stage


def test_sigkill_after_unsaved_quick_stages_resumes_to_the_same_run(tmp_path):
    # the kill lands in the fit before any checkpoint: the quick stages before it may read as pending on disk,
    # and the resume reruns them (and the fit) to a complete, verified run
    run_dir = tmp_path / "run"
    args = [*FAST, "model=xgboost", "model.params.n_estimators=20", "checkpointing=off",
            f"hydra.run.dir={run_dir}", f"cache_dir={tmp_path / 'cache'}"]
    out = cli("tests/kill_train.py", ["fit:5", *args])
    assert out.returncode == -9, out.stderr
    assert manifest(run_dir)["status"] == "running"
    out = cli("train.py", [f"resume={run_dir}"])
    assert out.returncode == 0, out.stderr
    man = manifest(run_dir)
    assert man["status"] == "completed" and all(man["stages"][s]["status"] == "done" for s in STAGES)
    RunDir.open(run_dir).verify()  # every artifact the manifest lists is there with its recorded hash
    assert (run_dir / "model" / "feature_spec.json").is_file() and (run_dir / "report.json").is_file()


def test_export_copies_the_spec_and_support_the_features_stage_wrote(tmp_path, monkeypatch):
    calls = _count_encodings(monkeypatch)
    _, run_dir = train_in_process(tmp_path, ["model=ridge"])
    assert calls == {"spec": 1, "support": 1}  # encoded once, by the features stage
    for name in ("feature_spec.json", "support.json"):
        assert (run_dir / "model" / name).read_bytes() == (run_dir / "features" / name).read_bytes()
    RunDir.open(run_dir).verify()


def test_a_trial_reusing_prepared_data_writes_the_first_trial_s_feature_files(tmp_path, monkeypatch):
    # in a sweep process (prepared.key_of gives a key) the second run reuses the first one's data preparation
    # and writes its spec and support as the bytes the first run wrote: nothing is encoded again
    from kaayko_exp.training import prepared

    monkeypatch.setattr(prepared, "key_of", lambda cfg: "one sweep's inputs")
    monkeypatch.setattr(prepared, "_kept", {})
    calls = _count_encodings(monkeypatch)
    _, first = train_in_process(tmp_path, ["model=ridge"], name="first")
    _, second = train_in_process(tmp_path, ["model=ridge", "model.params.alpha=3.0"], name="second")
    assert manifest(second)["stages"]["features"]["detail"]["prepared"] == "reused"
    assert calls == {"spec": 1, "support": 1}
    for name in ("features/feature_spec.json", "features/support.json", "model/feature_spec.json",
                 "model/support.json"):
        assert (second / name).read_bytes() == (first / name).read_bytes()
    RunDir.open(second).verify()


def test_the_owner_and_the_start_event_reach_the_disk_in_one_write(tmp_path, monkeypatch):
    saves = _snapshots(monkeypatch)
    _, run_dir = train_in_process(tmp_path, ["model=rule"])
    claimed = [s for s in saves if s["owner"]]
    assert [e["event"] for e in claimed[0]["events"]] == ["start"]  # the claim's own write holds the start
    assert [e["event"] for e in manifest(run_dir)["events"]] == ["start", "completed"]
