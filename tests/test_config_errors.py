"""Mistyped command-line arguments get one paragraph with the fix, exit 2, and no Hydra internals."""

from __future__ import annotations

import pytest
from runhelpers import cli

HYDRA_INTERNALS = ("full_key", "object_type", "reference_type", "Config search path", "provider=", "Traceback",
                   "HYDRA_FULL_ERROR")


@pytest.mark.parametrize("script,args,needles", [
    ("train.py", ["model.params.max_dept=5"],
     ["'model.params.max_dept' is not a setting under 'model.params'", "Did you mean 'model.params.max_depth'?",
      "+model.params.max_dept=<value>"]),
    ("train.py", ["model=xgbost"], ["the config group 'model' has no option 'xgbost'", "Did you mean model=xgboost?"]),
    ("train.py", ["evaluation.objectiv=val_mae"], ["Did you mean 'evaluation.objective'?"]),
    ("train.py", ["hydra/sweeper=optun"], ["Did you mean hydra/sweeper=optuna?"]),
    ("train.py", ["seed=abc"], ["seed=abc: Value 'abc' of type 'str' could not be converted to Integer"]),
    ("train.py", ["model.params={a:1"], ["'model.params={a:1' is not a valid command-line override"]),
    ("predict.py", ["run=outputs/2026-01-01/10-00-00", 'row={"lake": "Lake Mead", "temp_c": 22.5'],
     ["row= is not a JSON object (Expecting ',' delimiter", 'Pass one object like {"lake": "Lake Mead"']),
    ("predict.py", ["run=outputs/2026-01-01/10-00-00", 'row={"lake": "Lake Mead", temp_c: 22.5}'],
     ["row= is not a JSON object (Expecting property name enclosed in double quotes"]),
], ids=["misspelt-param", "misspelt-option", "misspelt-key", "hydra-group", "wrong-type", "bad-grammar",
        "row-unclosed", "row-unquoted-key"])
def test_a_mistyped_argument_gets_one_paragraph_with_the_fix(tmp_path, script, args, needles):
    out = cli(script, args, cwd=tmp_path)
    assert out.returncode == 2, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("kaayko-exp "), out.stderr
    for needle in needles:
        assert needle in out.stderr, out.stderr
    assert not [word for word in HYDRA_INTERNALS if word in out.stderr], out.stderr
    if script == "predict.py":  # a JSON row gets JSON's diagnosis, not the override grammar's
        assert "no viable alternative" not in out.stderr and "override" not in out.stderr
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_the_full_error_variable_still_shows_hydras_own_report(tmp_path):
    out = cli("train.py", ["model=xgbost"], cwd=tmp_path, env={"HYDRA_FULL_ERROR": "1"})
    assert out.returncode != 0 and "Traceback" in out.stderr and "MissingConfigException" in out.stderr
