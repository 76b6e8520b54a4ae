"""Print ``name==floor`` for the dependencies of pyproject.toml, pinned to the lowest version each allows.

Used by .ci/run to test on the oldest versions the project claims to support (pyproject is the one source of
the floors). Only ``>=`` bounds pin; a dependency without one is left out (pip resolves it).
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def floors(deps: list[str]) -> list[str]:
    pins = []
    for dep in deps:
        match = re.match(r"^\s*([A-Za-z0-9_.\-]+)(?:\[[^\]]*\])?\s*[^;]*?>=\s*([0-9][0-9A-Za-z.]*)", dep)
        if match:
            pins.append(f"{match.group(1)}=={match.group(2)}")
    return pins


if __name__ == "__main__":
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    print("\n".join(floors(project["dependencies"])))
    sys.exit(0)
