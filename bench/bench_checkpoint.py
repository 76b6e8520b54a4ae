"""Checkpointing overhead: XGBoost on sample_size=medium, checkpointing=default vs off, same script.

Usage: python bench/bench_checkpoint.py [--repeats 3] [--sample medium] [--extra key=value ...]

Runs the real pipeline in-process (fresh run directory each time, shared dataset cache),
alternating the two settings, and prints the fit-stage and whole-run seconds of each plus
the median ratio default/off. Goal: fit overhead under 5 %.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf, open_dict

import kaayko_exp.config  # noqa: F401  (registers the config schemas)

ROOT = Path(__file__).resolve().parents[1]


def run_once(tmp: Path, name: str, overrides: list[str]) -> dict:
    from kaayko_exp.runner import start

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
    n_ckpt = len([e for e in man["checkpoints"] if e["key"] == "fit"])
    return {"fit": man["stages"]["fit"]["seconds"], "total": total, "checkpoints_kept": n_ckpt}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--sample", default="medium")
    ap.add_argument("--extra", nargs="*", default=[])
    args = ap.parse_args()
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
        print(f"checkpointing={setting:<8} fit seconds: {fits}   (checkpoints kept: {rows[-1]['checkpoints_kept']})")
    fit_ratio = statistics.median(r["fit"] for r in results["default"]) / statistics.median(r["fit"] for r in results["off"])
    tot_ratio = statistics.median(r["total"] for r in results["default"]) / statistics.median(r["total"] for r in results["off"])
    print(f"fit-stage ratio default/off (median of {args.repeats}): {fit_ratio:.3f}  -> overhead {100 * (fit_ratio - 1):+.1f} %")
    print(f"whole-run ratio default/off (median of {args.repeats}): {tot_ratio:.3f}")


if __name__ == "__main__":
    main()
