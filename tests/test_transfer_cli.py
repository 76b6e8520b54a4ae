"""`python -m kaayko_exp.evaluation.transfer` says which held-out lake it is on, and how each went."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LAKES = ["Lake Mead", "Lake Michigan", "Lake Minnewanka", "Windermere", "Yellowstone Lake"]


def test_progress_per_held_out_lake_on_stderr_and_the_table_alone_on_stdout():
    proc = subprocess.run([sys.executable, "-m", "kaayko_exp.evaluation.transfer", "tests/data/kaayko_sample",
                           "--size", "300", "--model", "rule"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    started = re.findall(r"^\[(\d)/5\] (.+?): training rule on 300 synthetic rows", proc.stderr, re.M)
    done = re.findall(r"^\[(\d)/5\] (.+?): MAE [\d.]+, class accuracy [\d.]+", proc.stderr, re.M)
    expected = [(str(i), lake) for i, lake in enumerate(LAKES, 1)]
    assert started == expected and done == expected
    assert proc.stdout.lstrip().startswith("|") and "[1/5]" not in proc.stdout


def test_a_param_without_a_value_is_refused_before_anything_trains(capsys):
    import pytest

    from kaayko_exp.evaluation import transfer

    with pytest.raises(SystemExit) as exc:
        transfer.main(["--protocol", "climates", "--param", "max_depth"])
    assert exc.value.code == 2
    assert "--param takes KEY=VALUE" in capsys.readouterr().err
