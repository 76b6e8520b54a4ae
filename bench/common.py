"""What every bench script shares: the result format ``bench/run_all.py`` renders, and process measurements.

Each ``bench/bench_*.py`` accepts ``--quick`` (small sizes: shows the script works) and ``--json PATH``; with
``--json`` it writes its results as one :func:`section` list (see :func:`write_results`), which
``bench/run_all.py`` turns into ``bench/results.md`` without typing a number by hand.

A section is ``{"heading", "intro", "header", "rows", "notes"}``: a markdown table (``header`` names the
columns, ``rows`` holds strings or numbers) with a sentence above (how it was measured, the command) and notes
below (goals met or missed, and why).
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterable, Optional, Sequence

ROOT = Path(__file__).resolve().parents[1]
MIB = 1 << 20


def section(heading: str, header: Sequence[str], rows: Iterable[Sequence[Any]], *, intro: str = "",
            notes: Iterable[str] = ()) -> dict[str, Any]:
    return {"heading": heading, "intro": intro, "header": list(header), "rows": [list(r) for r in rows],
            "notes": list(notes)}


def goal(ok: bool) -> str:
    """The verdict cell of a goal column."""
    return "met" if ok else "MISSED"


def print_sections(sections: list[dict[str, Any]]) -> None:
    """Print sections as plain text tables (what a bench shows on stdout)."""
    for sec in sections:
        print(f"## {sec['heading']}")
        print(" | ".join(sec["header"]))
        for row in sec["rows"]:
            print(" | ".join(str(c) for c in row))
        for note in sec["notes"]:
            print(f"- {note}")
        print()


def write_results(path: Optional[str | Path], sections: list[dict[str, Any]]) -> None:
    """Write ``sections`` to ``path`` (``--json``) atomically; no-op without a path."""
    if not path:
        return
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps({"sections": sections}, indent=1, default=str), encoding="utf-8")
    os.replace(tmp, path)


def env(extra: Optional[dict[str, str]] = None) -> dict[str, str]:
    """The environment for child processes: the project importable, no colour codes."""
    out = dict(os.environ)
    out["PYTHONPATH"] = os.pathsep.join([str(ROOT), out.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    out["NO_COLOR"] = "1"
    out.update(extra or {})
    return out


#: A small process between the bench and the measured command: a fork of a big parent counts the parent's pages
#: in the child's peak RSS (Linux keeps the high-water mark across exec), so the command is started from this
#: wrapper, whose own footprint is ~10 MiB, and its RUSAGE_CHILDREN is what is reported.
_WRAPPER = (
    "import json, os, resource, subprocess, sys\n"
    "r = subprocess.run(json.loads(sys.argv[1]))\n"
    "u = resource.getrusage(resource.RUSAGE_CHILDREN)\n"
    "sys.stderr.write('\\n@@rusage ' + json.dumps([r.returncode, u.ru_maxrss, u.ru_utime + u.ru_stime]) + '\\n')\n"
)


def measure(cmd: Sequence[str], *, cwd: Path = ROOT, stdin: Optional[str] = None,
            log: Optional[Path] = None, extra_env: Optional[dict[str, str]] = None) -> dict[str, Any]:
    """Run ``cmd`` as a child; returns ``{"seconds", "cpu_seconds", "peak_rss_mib", "rc", "tail"}``.

    Peak RSS is the command's own high-water mark (measured by a small wrapper process, see :data:`_WRAPPER`;
    this process and earlier children do not count); wall time includes the interpreter's start-up and imports;
    CPU seconds are the command's user + system time (all its threads and children), which other load on a
    shared machine disturbs far less than the wall time.
    """
    wrapped = [sys.executable, "-c", _WRAPPER, json.dumps(list(cmd))]
    t0 = time.perf_counter()
    res = subprocess.run(wrapped, cwd=cwd, env=env(extra_env), input=stdin, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True)
    seconds = time.perf_counter() - t0
    text, _, tail = res.stdout.rpartition("\n@@rusage ")
    if not tail:
        text, rc, maxrss, cpu = res.stdout, res.returncode, 0, 0.0
    else:
        rc, maxrss, cpu = json.loads(tail.strip())
    if log:
        Path(log).write_text(text, encoding="utf-8")
    return {"seconds": seconds, "cpu_seconds": float(cpu), "peak_rss_mib": maxrss * 1024 / MIB, "rc": rc,
            "tail": text[-3000:]}


def python(*args: str) -> list[str]:
    """``[sys.executable, *args]``."""
    return [sys.executable, *args]


def self_peak_rss_mib() -> float:
    """This process's own peak RSS so far."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / MIB
