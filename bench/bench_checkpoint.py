"""Checkpointing overhead: XGBoost on sample_size=medium, checkpointing=default vs off, same script.

Usage: python bench/bench_checkpoint.py [--repeats 3] [--sample medium] [--extra key=value ...]

Runs the real pipeline in-process (fresh run directory each time, shared dataset cache),
alternating the two settings, and prints the fit-stage and whole-run seconds of each, the
ratios default/off (median and best of the repeats), and the time the checkpoint writes
themselves took as a share of the fit (measured inside the fit loop, so it is not blurred by
run-to-run noise on a shared machine). Goal: overhead under 5 %.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]
from common import goal, section, write_results  # noqa: E402

from hydra import compose, initialize_config_dir  # noqa: E402
from omegaconf import open_dict  # noqa: E402

import kaayko_exp.config  # noqa: F401,E402  (registers the config schemas)



def run_once(tmp: Path, name: str, overrides: list[str]) -> dict:
    from kaayko_exp.training.runner import start

    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose(config_name="train", overrides=overrides, return_hydra_config=True)
    choices = {k: v for k, v in cfg.hydra.runtime.choices.items() if not k.startswith("hydra/") and v}
    with open_dict(cfg):
        del cfg["hydra"]
    run_dir = tmp / name
    t0 = time.perf_counter()
    start(cfg, run_dir, choices, overrides)
    total = time.perf_counter() - t0
    man = json.loads((run_dir / "manifest.json").read_text())
    fit = man["stages"]["fit"]
    return {"fit": fit["seconds"], "total": total, "written": fit["detail"]["checkpoints_written"],
            "write_seconds": fit["detail"]["checkpoint_seconds"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--sample", default="medium")
    ap.add_argument("--extra", nargs="*", default=[])
    ap.add_argument("--quick", action="store_true", help="sample_size=tiny, one repeat: checks the script works")
    ap.add_argument("--json", default=None, help="write the results here (bench/run_all.py)")
    args = ap.parse_args()
    if args.quick:
        args.sample, args.repeats = "tiny", 1
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        base = ["model=xgboost", f"sample_size={args.sample}", "plots=false", f"cache_dir={tmp / 'cache'}",
                "evaluation.permutation_repeats=1", *args.extra]
        run_once(tmp, "warmup", [*base, "checkpointing=off"])  # builds the dataset cache, warms imports
        results: dict[str, list[dict]] = {"off": [], "default": []}
        for i in range(args.repeats):
            for setting in ("off", "default") if i % 2 == 0 else ("default", "off"):
                results[setting].append(run_once(tmp, f"{setting}-{i}", [*base, f"checkpointing={setting}"]))
    for setting, rows in results.items():
        fits = ", ".join(f"{r['fit']:.2f}" for r in rows)
        print(f"checkpointing={setting:<8} fit seconds: {fits}   (checkpoints written per run: {rows[-1]['written']})")

    def ratio(what: str, agg) -> float:
        return agg(r[what] for r in results["default"]) / agg(r[what] for r in results["off"])

    for what, label in (("fit", "fit stage"), ("total", "whole run")):
        print(f"{label:<10} ratio default/off: median {ratio(what, statistics.median):.3f}, "
              f"best {ratio(what, min):.3f}  (over {args.repeats} alternating repeats)")
    share = statistics.median(r["write_seconds"] / r["fit"] for r in results["default"])
    per = statistics.median(r["write_seconds"] / max(r["written"], 1) for r in results["default"])
    print(f"checkpoint writes: {per * 1000:.1f} ms each, {100 * share:.1f} % of the fit stage (median)  "
          f"-> goal < 5 %: {'OK' if share < 0.05 else 'MISSED'}")
    rows = [[label, ratio(what, statistics.median), ratio(what, min)]
            for what, label in (("fit", "fit stage"), ("total", "whole run"))]
    write_results(args.json, [section(
        "Checkpoint overhead", ["seconds ratio checkpointing=default / off", "median", "best"], rows,
        intro=f"XGBoost, `sample_size={args.sample}`, {args.repeats} alternating repeats in one process.",
        notes=[f"checkpoint writes: {per * 1000:.1f} ms each, {100 * share:.1f} % of the fit stage (median; goal "
               f"< 5 %: {goal(share < 0.05)})"])])


if __name__ == "__main__":
    main()
