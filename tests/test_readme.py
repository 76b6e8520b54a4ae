"""Every `python train.py ...` command the README prints composes, exactly as printed.

Commands with a placeholder (`<run>`, `<date>`) or a resume of an example directory are skipped here;
their forms are run for real in test_resume_paths.py, test_predict_cli.py and test_sweep_kaayko.py.
"""

from __future__ import annotations

import re
import shlex

import pytest
from hydra.core.override_parser.overrides_parser import OverridesParser
from runhelpers import ROOT, compose_train

FENCE = re.compile(r"```bash\n(.*?)```", re.S)


def _train_commands() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    lines = [line.strip() for block in FENCE.findall(text) for line in block.splitlines()]
    return [line for line in lines if line.startswith("python train.py")]


def _composable(line: str) -> list[str] | None:
    """The overrides of one README line as a single composable run (sweeps take their first value)."""
    args = shlex.split(line, comments=True)[2:]
    if any("<" in a for a in args) or any(a.startswith("resume=") for a in args) or "--help" in args:
        return None
    parser = OverridesParser.create()
    out = []
    for arg in (a for a in args if a not in ("-m", "--multirun")):
        override = parser.parse_override(arg)  # a grammar error fails the test here
        if not override.is_sweep_override():
            out.append(arg)
        elif override.value_type is not None and override.value_type.name in ("CHOICE_SWEEP", "SIMPLE_CHOICE_SWEEP"):
            first = next(iter(override.sweep_string_iterator()))
            out.append(f"{override.get_key_element()}={first}")
        # interval/range sweeps are the sweeper's search space: parsed above, nothing to compose
    return out


COMMANDS = _train_commands()


def test_the_readme_prints_training_commands():
    assert len(COMMANDS) >= 8


@pytest.mark.parametrize("line", COMMANDS)
def test_each_readme_training_command_composes(line):
    overrides = _composable(line)
    if overrides is None:
        pytest.skip("placeholder or resume of an example directory")
    cfg = compose_train(overrides)
    assert cfg.model.name
    if "-m" in line.split():
        assert "hparams_search=" not in line or cfg.hydra.sweeper.n_trials >= 1


#: what an example command writes: ``--out X``, ``--report X``, ``--output X``, predict's ``output=X``
WRITES = re.compile(r"(?:--out|--report|--output)[ =]([^\s`'\")]+)|(?<![\w.])output=([^\s`'\")]+)")


def _example_targets() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    code = FENCE.findall(text) + re.findall(r"`(python [^`]+)`", text)
    found = [a or b for block in code for a, b in WRITES.findall(block)]
    return [t for t in found if "<" not in t and t.upper() != t]  # placeholders: <dir>, DIR


def test_readme_examples_write_under_outputs_and_never_over_a_tracked_file():
    import subprocess

    targets = _example_targets()
    assert any("compare_real" in line for line in (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
               if "--out" in line)
    assert len(targets) >= 3
    tracked = set(subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True).stdout.split())
    for target in targets:
        path = target.rstrip("/")
        assert path.startswith("outputs/"), f"README example writes {target}, outside outputs/"
        assert not any(t == path or t.startswith(path + "/") for t in tracked), f"{target} is a tracked file"
