"""Framework overhead: ``python train.py`` against the bare libraries doing the same work, in one script.

Usage: python bench/bench_overhead.py [--quick] [--json PATH] [--repeats N]

Two pairs (issue 11, parts 1 and 2):
  * ``python train.py model=xgboost sample_size=complete`` (warm cache, default report) vs bench/bare_fit.py:
    the same cached parquet into float32 numpy, 20 % of lakes held out, XGBoost hist with
    conf/model/xgboost.yaml's parameters on a QuantileDMatrix, predict the held-out rows;
  * ``python train.py model=histgb sample_size=large`` vs the same with HistGradientBoostingRegressor and
    conf/model/histgb.yaml's parameters.
``--quick`` uses sample_size=medium for both. Each child's wall time (start-up included) and its own peak RSS
come from common.measure; the dataset cache is warmed first (the run's own loader, so both read the same file).
The run's per-stage seconds come from its manifest.json. Goals: wall and peak-RSS ratios ≤ 1.10; the complete
XGBoost run under 1.4 GiB peak RSS.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

GOAL_RATIO = 1.10
GOAL_RSS_MIB = 1.4 * 1024
WARM = """
import json, sys
from hydra import compose, initialize_config_dir
import kaayko_exp.config  # registers the schemas
from kaayko_exp.data import load_dataset
with initialize_config_dir(config_dir=sys.argv[1], version_base="1.3"):
    cfg = compose(config_name="train", overrides=sys.argv[2:])
_, info = load_dataset(cfg.data, cfg.sample_size, seed=cfg.seed, cache_dir=cfg.cache_dir)
print("PATH=" + json.dumps(str((info.get("cache") or {}).get("path") or info.get("path"))))
"""


def model_params(model: str) -> dict:
    import yaml

    params = yaml.safe_load((common.ROOT / "conf" / "model" / f"{model}.yaml").read_text())["params"]
    return {k: v for k, v in params.items() if v is not None}


def warm(overrides: list[str]) -> str:
    res = common.measure(common.python("-c", WARM, str(common.ROOT / "conf"), *overrides))
    if res["rc"] != 0:
        raise SystemExit(f"warming the dataset cache failed:\n{res['tail']}")
    line = [ln for ln in res["tail"].splitlines() if ln.startswith("PATH=")][-1]
    return json.loads(line[5:])


def stage_seconds(run_dir: Path) -> dict[str, float]:
    manifest = json.loads((run_dir / "manifest.json").read_text())
    stages = manifest.get("stages", {})
    items = stages.items() if isinstance(stages, dict) else ((s.get("name"), s) for s in stages)
    return {name: float(s.get("seconds") or 0.0) for name, s in items}, manifest


def pair(model: str, sample: str, repeats: int, tmp: Path) -> dict:
    overrides = [f"model={model}", f"sample_size={sample}"]
    parquet = warm(overrides)
    bare_cmd = common.python(str(common.ROOT / "bench" / "bare_fit.py"), parquet, model,
                             json.dumps(model_params(model)))
    runs, bares = [], []
    for r in range(repeats):  # interleaved: bare, run, bare, run ...
        bare = common.measure(bare_cmd)
        if bare["rc"] != 0:
            raise SystemExit(f"bare {model} failed:\n{bare['tail']}")
        bares.append(bare)
        run_dir = tmp / f"{model}-{sample}-{r}"
        run = common.measure(common.python("train.py", *overrides, f"hydra.run.dir={run_dir}"))
        if run["rc"] != 0:
            raise SystemExit(f"train.py {' '.join(overrides)} failed:\n{run['tail']}")
        run["stages"], manifest = stage_seconds(run_dir)
        info = manifest["stages"]["dataset"]["detail"].get("info", {})
        used = (info.get("cache") or {}).get("path") or info.get("path")
        if used and Path(used).resolve() != Path(parquet).resolve():
            raise SystemExit(f"the run read {used}, the bare script {parquet}: not the same work")
        runs.append(run)
    best = lambda xs, k: min(x[k] for x in xs)  # noqa: E731  (least disturbed by other load)
    out = {"model": model, "sample": sample, "cmd": "python train.py " + " ".join(overrides),
           "run_s": best(runs, "seconds"), "bare_s": best(bares, "seconds"),
           "run_rss": best(runs, "peak_rss_mib"), "bare_rss": best(bares, "peak_rss_mib"),
           "stages": min(runs, key=lambda x: x["seconds"])["stages"]}
    out["wall_ratio"] = out["run_s"] / out["bare_s"]
    out["rss_ratio"] = out["run_rss"] / out["bare_rss"]
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="sample_size=medium for both pairs")
    ap.add_argument("--json", help="write the result sections here")
    ap.add_argument("--repeats", type=int, default=1)
    args = ap.parse_args(argv)
    plan = [("xgboost", "medium" if args.quick else "complete"), ("histgb", "medium" if args.quick else "large")]
    with tempfile.TemporaryDirectory(prefix="bench-overhead-") as tmp:
        results = [pair(m, s, args.repeats, Path(tmp)) for m, s in plan]
    rows, stage_rows, notes = [], [], []
    for r in results:
        rows.append([r["cmd"], f"{r['run_s']:.1f}", f"{r['bare_s']:.1f}", f"{r['wall_ratio']:.2f}",
                     common.goal(r["wall_ratio"] <= GOAL_RATIO), f"{r['run_rss']:.0f}", f"{r['bare_rss']:.0f}",
                     f"{r['rss_ratio']:.2f}", common.goal(r["rss_ratio"] <= GOAL_RATIO)])
        stage_rows.append([r["cmd"], *(f"{r['stages'].get(s, 0.0):.1f}" for s in
                                       ("dataset", "split", "features", "fit", "evaluate", "report", "export"))])
        print(f"{r['cmd']}: run {r['run_s']:.1f} s / bare {r['bare_s']:.1f} s = {r['wall_ratio']:.2f}x wall; "
              f"peak RSS {r['run_rss']:.0f} / {r['bare_rss']:.0f} MiB = {r['rss_ratio']:.2f}x")
        print("  stages: " + ", ".join(f"{k} {v:.1f}s" for k, v in r["stages"].items()))
    xgb = results[0]
    ok = xgb["run_rss"] < GOAL_RSS_MIB
    notes.append(f"{xgb['cmd']} peak RSS {xgb['run_rss']:.0f} MiB (goal < {GOAL_RSS_MIB:.0f} MiB): {common.goal(ok)}.")
    print(notes[-1])
    notes.append(f"Goals: wall and peak-RSS ratios ≤ {GOAL_RATIO:.2f}. Best of {args.repeats} interleaved "
                 "repeat(s); a shared machine makes single timings noisy.")
    common.write_results(args.json, [
        common.section("Framework overhead vs the bare libraries",
                       ["command", "run s", "bare s", "wall ratio", "goal", "run MiB", "bare MiB", "RSS ratio",
                        "goal"], rows,
                       intro="Each train.py run (warm dataset cache, default report) against bench/bare_fit.py "
                             "reading the same cached parquet into float32, holding out 20 % of lakes, training "
                             "the same learner with the same parameters and predicting the held-out rows "
                             "(`python bench/bench_overhead.py`).", notes=notes),
        common.section("Per-stage seconds of those runs (manifest.json)",
                       ["command", "dataset", "split", "features", "fit", "evaluate", "report", "export"],
                       stage_rows),
    ])
    return 0


if __name__ == "__main__":
    sys.exit(main())
