"""Run every benchmark and write the performance table: ``bench/results.md`` and the README's copy of it.

Usage::

    python bench/run_all.py                  # every bench at full size (about 30-45 minutes on 2 cores)
    python bench/run_all.py --quick          # small sizes, written to bench/results-quick.md (README untouched)
    python bench/run_all.py --only predict,startup   # some benches; the others' sections are kept from the
                                                     # previous results (bench/.results/<name>.json)
    python bench/run_all.py --render-only            # no bench: the page again from the kept results

Each ``bench/bench_<name>.py`` runs as its own process with ``--json``; its sections (see ``bench/common.py``)
are kept in ``bench/.results/<name>.json`` and rendered here with the machine, the library versions and the
commit they ran on. Nothing in the table is typed by hand: ``tests/test_bench_results.py`` checks that the
README holds exactly the table of ``bench/results.md``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterable, Mapping, Optional

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, env, python  # noqa: E402

#: bench name → script, in the order the table shows them
BENCHES: dict[str, str] = {
    "overhead": "bench_overhead.py",
    "encoding": "bench_encoding.py",
    "models": "bench_models.py",
    "startup": "bench_startup.py",
    "predict": "bench_predict.py",
    "sweep": "bench_sweep.py",
    "job": "bench_job.py",
    "checkpoint": "bench_checkpoint.py",
    "transfer": "bench_transfer.py",
    "extrapolation": "bench_extrapolation.py",
    "tracking": "bench_tracking.py",
    "generator": "bench_generator.py",
    "dask": "bench_dask.py",
}
LIBRARIES = ("hydra-core", "omegaconf", "numpy", "pandas", "pyarrow", "scikit-learn", "xgboost", "optuna",
             "joblib", "matplotlib", "scipy")
README_START = "<!-- bench/results.md: start (written by python bench/run_all.py) -->"
README_END = "<!-- bench/results.md: end -->"
STORE = ROOT / "bench" / ".results"


# ------------------------------------------------------------------------------------------------ machine
def machine() -> dict[str, Any]:
    """CPU, cores, memory, OS, Python and library versions of this machine."""
    from importlib import metadata

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gib: Optional[float] = None
    try:
        mem_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError, AttributeError):
        pass
    versions = {}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                                text=True).stdout.strip()
        dirty = bool(subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                                    capture_output=True, text=True).stdout.strip())
    except OSError:
        commit, dirty = "", False
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_gib": mem_gib, "os": platform.platform(),
            "python": platform.python_version(), "libraries": versions,
            "commit": (commit + (" (uncommitted changes)" if dirty else "")) or "unknown"}


# ------------------------------------------------------------------------------------------------ render
def _cell(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        if value != value:  # NaN
            return "–"
        if abs(value) < 1:
            return f"{value:.4f}"
        return f"{value:,.1f}" if abs(value) < 100 else f"{value:,.0f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value).replace("|", "\\|").replace("\n", " ")


def render_section(sec: Mapping[str, Any], level: str = "###") -> list[str]:
    out = [f"{level} {sec['heading']}", ""]
    if sec.get("intro"):
        out += [str(sec["intro"]), ""]
    header = [str(h) for h in sec.get("header", [])]
    if header:
        out.append("| " + " | ".join(header) + " |")
        out.append("|" + "|".join("---" for _ in header) + "|")
        for row in sec.get("rows", []):
            cells = [_cell(v) for v in row] + [""] * (len(header) - len(row))
            out.append("| " + " | ".join(cells[: len(header)]) + " |")
        out.append("")
    for note in sec.get("notes", []):
        out.append(f"- {note}")
    if sec.get("notes"):
        out.append("")
    return out


def render(results: Mapping[str, Mapping[str, Any]], info: Mapping[str, Any]) -> str:
    """The whole results page: where it ran, then each bench's sections, in :data:`BENCHES` order."""
    libs = ", ".join(f"{k} {v}" for k, v in info["libraries"].items())
    mem = f"{info['memory_gib']:.0f} GiB" if info.get("memory_gib") else "unknown memory"
    lines = [
        "# kaayko-exp performance",
        "",
        f"Generated by `python bench/run_all.py` on {info.get('date', 'unknown date')} from commit "
        f"{info['commit']}: {info['cpu']}, {info['cores']} cores, {mem}, {info['os']}, Python {info['python']}.",
        f"Libraries: {libs}.",
        "",
        "Every figure below was measured by the bench script named in its section, each ratio against a baseline "
        "run in the same script. The machine may be shared with other work; the ratios are the figures to read.",
        "",
    ]
    for name in BENCHES:
        entry = results.get(name)
        if not entry:
            continue
        when = f" ({entry['when']}, {entry['seconds']:.0f} s)" if entry.get("when") else ""
        lines += [f"## {name}: `{entry['command']}`{when}", ""]
        if entry.get("error"):
            lines += [f"Not measured: {entry['error']}", ""]
            continue
        for sec in entry.get("sections", []):
            lines += render_section(sec)
    return "\n".join(lines).rstrip() + "\n"


def readme_block(results_md: str) -> str:
    """What the README shows: the results page with its headings moved down two levels (it sits under
    ``## Benchmarks``), between the two markers."""
    body = []
    for line in results_md.splitlines():
        if line.startswith("# "):
            continue
        body.append("##" + line if line.startswith("#") else line)
    return README_START + "\n" + "\n".join(body).strip() + "\n" + README_END


def update_readme(readme: Path, results_md: str) -> bool:
    """Replace the block between the markers; returns False when the README has no markers."""
    text = readme.read_text(encoding="utf-8")
    start, end = text.find(README_START), text.find(README_END)
    if start < 0 or end < 0:
        return False
    new = text[:start] + readme_block(results_md) + text[end + len(README_END):]
    _write(readme, new)
    return True


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


# ------------------------------------------------------------------------------------------------ run
def run_bench(name: str, quick: bool, store: Path, extra: Iterable[str] = ()) -> dict[str, Any]:
    script = BENCHES[name]
    out = store / f"{name}.json"
    args = [f"bench/{script}", *(["--quick"] if quick else []), *extra]
    command = "python " + " ".join(args)
    print(f"== {command}", flush=True)
    t0 = time.perf_counter()
    tmp = store / f"{name}.part.json"
    tmp.unlink(missing_ok=True)
    res = subprocess.run(python(*args, "--json", str(tmp)), cwd=ROOT, env=env())
    seconds = time.perf_counter() - t0
    entry: dict[str, Any] = {"command": command, "seconds": seconds,
                             "when": dt.datetime.now().strftime("%Y-%m-%d %H:%M")}
    if res.returncode != 0 or not tmp.exists():
        entry["error"] = f"`{command}` exited {res.returncode} after {seconds:.0f} s (see its output above)."
    else:
        entry["sections"] = json.loads(tmp.read_text(encoding="utf-8"))["sections"]
        tmp.unlink()
    out.write_text(json.dumps(entry, indent=1), encoding="utf-8")
    print(f"== {name}: {'failed' if 'error' in entry else 'done'} in {seconds:.0f} s", flush=True)
    return entry


def main(argv: Optional[list[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="small sizes; writes bench/results-quick.md only")
    ap.add_argument("--only", default="", help=f"comma-separated subset of: {', '.join(BENCHES)}")
    ap.add_argument("--out", type=Path, default=None, help="results file (default bench/results.md)")
    ap.add_argument("--args", default="", help="extra arguments for the --only bench(es), e.g. \"--sizes large\" "
                                                "(the page shows each bench's command as run)")
    ap.add_argument("--render-only", action="store_true",
                    help="run no bench: write the page (and the README's copy) from the kept results")
    args = ap.parse_args(argv)
    only = [] if args.render_only else [n.strip() for n in args.only.split(",") if n.strip()] or list(BENCHES)
    unknown = [n for n in only if n not in BENCHES]
    if unknown:
        ap.error(f"unknown bench {', '.join(unknown)}: choose from {', '.join(BENCHES)}")
    store = STORE / ("quick" if args.quick else "full")
    store.mkdir(parents=True, exist_ok=True)
    out = args.out or ROOT / "bench" / ("results-quick.md" if args.quick else "results.md")
    results: dict[str, Any] = {}
    for name in BENCHES:  # keep earlier results of the benches not run now
        if name not in only and (store / f"{name}.json").exists():
            results[name] = json.loads((store / f"{name}.json").read_text(encoding="utf-8"))
    failed = []
    for name in only:
        results[name] = run_bench(name, args.quick, store, shlex.split(args.args))
        if "error" in results[name]:
            failed.append(name)
    info = machine() | {"date": dt.date.today().isoformat()}
    page = render(results, info)
    _write(out, page)
    print(f"wrote {out.relative_to(ROOT) if out.is_relative_to(ROOT) else out}")
    if not args.quick and args.out is None and update_readme(ROOT / "README.md", page):
        print("updated the README's table")
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
