"""Framework overhead: ``python train.py`` against the bare libraries doing the same work, in one script.

Usage: python bench/bench_overhead.py [--quick] [--json PATH] [--sizes large,complete]
                                      [--models xgboost,histgb] [--repeats 3] [--complete-repeats 1]

For each model (xgboost, histgb) and sample size (large, complete): ``python train.py model=M sample_size=S``
(warm dataset cache, default report, the default ``features.category_splits``) against bench/bare_fit.py: the
same cached parquet into float32 numpy, 20 % of lakes held out, the learner with conf/model/M.yaml's parameters
and the same category encoding (XGBoost hist on a QuantileDMatrix; HistGradientBoostingRegressor), predicting
the held-out rows. Bare and run alternate (bare, run, bare, run ...) so both see the same machine load; the
figures are medians over the repeats. Each child's wall time (start-up included), CPU seconds and its own peak
RSS come from common.measure; the dataset cache is warmed first (the run's own loader, so both read the same file).

Where the rest goes: the run's per-stage seconds (manifest.json) against the bare script's own parts
(parquet to matrix, fit, predict); "start-up and exit" = each one's wall time minus those parts. ``--quick`` runs
sample_size=medium once. Goals: wall ratio ≤ 1.10 for xgboost and ≤ 1.25 for histgb; peak-RSS ratio ≤ 1.10;
the complete XGBoost run under 1.4 GiB peak RSS.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

GOAL_RATIO = {"xgboost": 1.10, "histgb": 1.25}
GOAL_RSS_RATIO = 1.10
GOAL_RSS_MIB = 1.4 * 1024
WARM = """
import json, sys
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf
import kaayko_exp.config  # registers the schemas
from kaayko_exp.data import load_dataset
with initialize_config_dir(config_dir=sys.argv[1], version_base="1.3"):
    cfg = compose(config_name="train", overrides=sys.argv[2:])
_, info = load_dataset(cfg.data, cfg.sample_size, seed=cfg.seed, cache_dir=cfg.cache_dir)
print("PATH=" + json.dumps(str((info.get("cache") or {}).get("path") or info.get("path"))))
print("SPLITS=" + json.dumps(OmegaConf.select(cfg, "features.category_splits", default="native")))
"""
STAGES = ("dataset", "split", "features", "fit", "evaluate", "report", "export")
#: the breakdown's parts: (label, the run's stages, the bare script's parts); "start-up and exit" is each
#: process's wall time outside its measured parts (the run's stages; the bare script's data, fit, predict)
PARTS = (("start-up and exit", ("start-up",), ("outside",)), ("data", ("dataset", "split", "features"), ("data",)),
         ("fit", ("fit",), ("fit",)), ("evaluate", ("evaluate",), ("predict",)), ("report", ("report",), ()),
         ("export", ("export",), ()))


def model_params(model: str) -> dict:
    import yaml

    params = yaml.safe_load((common.ROOT / "conf" / "model" / f"{model}.yaml").read_text())["params"]
    return {k: v for k, v in params.items() if v is not None}


def warm(overrides: list[str]) -> tuple[str, str]:
    res = common.measure(common.python("-c", WARM, str(common.ROOT / "conf"), *overrides))
    if res["rc"] != 0:
        raise SystemExit(f"warming the dataset cache failed:\n{res['tail']}")
    value = lambda key: json.loads([ln for ln in res["tail"].splitlines() if ln.startswith(key)][-1][len(key):])  # noqa: E731
    return value("PATH="), value("SPLITS=")


def run_stages(run_dir: Path, wall: float) -> tuple[dict[str, float], dict]:
    manifest = json.loads((run_dir / "manifest.json").read_text())
    stages = {name: float(manifest["stages"].get(name, {}).get("seconds") or 0.0) for name in STAGES}
    stages["start-up"] = max(0.0, wall - sum(stages.values()))
    results = json.loads((run_dir / "evaluate" / "results.json").read_text())
    stages.update({f"evaluate:{k}": float(v) for k, v in (results.get("evaluate_parts_seconds") or {}).items()})
    return stages, manifest


def bare_parts(res: dict) -> dict[str, float]:
    line = [ln for ln in res["tail"].splitlines() if ln.startswith("{")][-1]
    return {k: float(v) for k, v in json.loads(line)["seconds"].items()}


def median(rows: list[dict], key: str) -> float:
    return statistics.median(r.get(key, 0.0) for r in rows)


def pair(model: str, sample: str, repeats: int, tmp: Path) -> dict:
    overrides = [f"model={model}", f"sample_size={sample}"]
    parquet, splits = warm(overrides)
    bare_cmd = common.python(str(common.ROOT / "bench" / "bare_fit.py"), parquet, model,
                             json.dumps(model_params(model)), "42", splits)
    runs, bares, load = [], [], [os.getloadavg()[0]]
    for r in range(repeats):  # interleaved: bare, run, bare, run ...
        bare = common.measure(bare_cmd)
        if bare["rc"] != 0:
            raise SystemExit(f"bare {model} failed:\n{bare['tail']}")
        bare["parts"] = bare_parts(bare)
        bare["parts"]["outside"] = max(0.0, bare["seconds"] - sum(bare["parts"].get(k, 0.0)
                                                                  for k in ("data", "fit", "predict")))
        bares.append(bare)
        run_dir = tmp / f"{model}-{sample}-{r}"
        run = common.measure(common.python("train.py", *overrides, f"hydra.run.dir={run_dir}"))
        if run["rc"] != 0:
            raise SystemExit(f"train.py {' '.join(overrides)} failed:\n{run['tail']}")
        run["stages"], manifest = run_stages(run_dir, run["seconds"])
        info = manifest["stages"]["dataset"]["detail"].get("info", {})
        used = (info.get("cache") or {}).get("path") or info.get("path")
        if used and Path(used).resolve() != Path(parquet).resolve():
            raise SystemExit(f"the run read {used}, the bare script {parquet}: not the same work")
        runs.append(run)
        load.append(os.getloadavg()[0])
        print(f"  {model} {sample} #{r + 1}: run {run['seconds']:.1f} s, bare {bare['seconds']:.1f} s "
              f"(load {load[-1]:.1f})", flush=True)
    stage_keys = sorted({k for r in runs for k in r["stages"]})
    out = {"model": model, "sample": sample, "splits": splits, "cmd": "python train.py " + " ".join(overrides),
           "run_s": median(runs, "seconds"), "bare_s": median(bares, "seconds"),
           "run_cpu": median(runs, "cpu_seconds"), "bare_cpu": median(bares, "cpu_seconds"),
           "run_rss": median(runs, "peak_rss_mib"), "bare_rss": median(bares, "peak_rss_mib"),
           "ratios": [r["seconds"] / b["seconds"] for r, b in zip(runs, bares)],
           "stages": {k: statistics.median(r["stages"].get(k, 0.0) for r in runs) for k in stage_keys},
           "bare_parts": {k: statistics.median(b["parts"].get(k, 0.0) for b in bares)
                          for k in bares[0]["parts"]},
           "load": (min(load), max(load)), "repeats": repeats}
    out["wall_ratio"] = out["run_s"] / out["bare_s"]
    out["cpu_ratio"] = out["run_cpu"] / out["bare_cpu"] if out["bare_cpu"] else float("nan")
    out["rss_ratio"] = out["run_rss"] / out["bare_rss"]
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="sample_size=medium, one repeat")
    ap.add_argument("--json", help="write the result sections here")
    ap.add_argument("--sizes", default="large,complete")
    ap.add_argument("--models", default="xgboost,histgb")
    ap.add_argument("--repeats", type=int, default=3, help="interleaved bare/run pairs per size (median)")
    ap.add_argument("--complete-repeats", type=int, default=1, help="the same at sample_size=complete (long)")
    args = ap.parse_args(argv)
    sizes = ["medium"] if args.quick else [s.strip() for s in args.sizes.split(",") if s.strip()]
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    reps = {s: 1 if args.quick else (args.complete_repeats if s == "complete" else args.repeats) for s in sizes}
    with tempfile.TemporaryDirectory(prefix="bench-overhead-") as tmp:
        results = [pair(m, s, reps[s], Path(tmp)) for s in sizes for m in models]
    rows, part_rows, notes = [], [], []
    for r in results:
        goal = GOAL_RATIO.get(r["model"], 1.10)
        rows.append([r["cmd"], r["splits"], f"{r['run_s']:.1f}", f"{r['bare_s']:.1f}", f"{r['wall_ratio']:.2f}",
                     f"≤ {goal:.2f}: {common.goal(r['wall_ratio'] <= goal)}", f"{r['run_cpu']:.1f}",
                     f"{r['bare_cpu']:.1f}", f"{r['cpu_ratio']:.2f}", f"{r['run_rss']:.0f}",
                     f"{r['bare_rss']:.0f}", f"{r['rss_ratio']:.2f}", common.goal(r["rss_ratio"] <= GOAL_RSS_RATIO),
                     f"{r['repeats']}", f"{r['load'][0]:.1f}-{r['load'][1]:.1f}"])
        st, bp = r["stages"], r["bare_parts"]
        extra = []
        for label, ours, theirs in PARTS:
            a, b = sum(st.get(k, 0.0) for k in ours), sum(bp.get(k, 0.0) for k in theirs)
            extra.append(f"{a:.1f} / {b:.1f}" if theirs else f"{a:.1f}")
        part_rows.append([r["cmd"], *extra, f"{r['run_s'] - r['bare_s']:+.1f}"])
        ev = {k.split(":", 1)[1]: v for k, v in st.items() if k.startswith("evaluate:")}
        print(f"{r['cmd']}: run {r['run_s']:.1f} s / bare {r['bare_s']:.1f} s = {r['wall_ratio']:.2f}x wall "
              f"(each pair: {', '.join(f'{x:.2f}' for x in r['ratios'])}), CPU {r['run_cpu']:.1f} / "
              f"{r['bare_cpu']:.1f} s = {r['cpu_ratio']:.2f}x; peak RSS {r['run_rss']:.0f} / "
              f"{r['bare_rss']:.0f} MiB = {r['rss_ratio']:.2f}x")
        print("  run / bare: " + ", ".join(f"{lab} {cell}" for (lab, _, _), cell in zip(PARTS, extra)))
        print("  evaluate: " + ", ".join(f"{k} {v:.2f}s" for k, v in ev.items()))
        notes.append(f"{r['cmd']}: the evaluate stage's parts (median s): "
                     + ", ".join(f"{k.replace('_', ' ')} {v:.2f}" for k, v in ev.items()) + ".")
        if r["model"] == "xgboost":
            notes.append(f"{r['cmd']}: validation and in-sample scoring read the booster's prediction cache of the "
                         "rows it was fit and validated on (the same values; read at the end of the fit, in "
                         "milliseconds), so the evaluate stage predicts only the test rows and the permuted rows.")
        if "import" in bp:
            where = ("a background thread while its data stages run (kaayko_exp/training/prefetch.py)"
                     if r["model"] == "xgboost" else "its start-up (the config check)")
            notes.append(f"{r['cmd']}: importing the learner's library took the bare script {bp['import']:.1f} s "
                         f"of its start-up; the run imports it on {where}.")
    for r in results:
        if r["model"] == "xgboost" and r["sample"] == "complete":
            ok = r["run_rss"] < GOAL_RSS_MIB
            notes.append(f"{r['cmd']} peak RSS {r['run_rss']:.0f} MiB (goal < {GOAL_RSS_MIB:.0f} MiB): "
                         f"{common.goal(ok)}.")
    notes.append(f"Medians of the interleaved repeats (runs column); a shared machine makes single timings noisy, "
                 f"so the 1-minute load average ({os.cpu_count()} cores) during each pair is shown beside it, and "
                 "the CPU seconds (user + system, all threads), which other load disturbs far less than wall time.")
    common.write_results(args.json, [
        common.section("Framework overhead vs the bare libraries",
                       ["command", "category splits", "run s", "bare s", "wall ratio", "goal", "run CPU s",
                        "bare CPU s", "CPU ratio", "run MiB",
                        "bare MiB", "RSS ratio", "goal ≤ 1.10", "runs", "load"], rows,
                       intro="Each train.py run (warm dataset cache, default report) against bench/bare_fit.py "
                             "reading the same cached parquet into float32, holding out 20 % of lakes, training "
                             "the same learner with the same parameters and category encoding and predicting the "
                             "held-out rows (`python bench/bench_overhead.py`).", notes=notes),
        common.section("Where the run's time goes: run / bare seconds per part (medians)",
                       ["command", *(lab for lab, _, _ in PARTS), "run − bare"], part_rows,
                       intro="start-up and exit: interpreter, imports, Hydra's composition, the run directory "
                             "and the process exit (the run's wall time less its stages) against the bare "
                             "script's interpreter, imports and exit (its wall time less its data, fit and "
                             "predict parts); "
                             "data: the dataset, split and features stages against parquet to matrix; fit; "
                             "evaluate (test, validation and in-sample scoring, permutation importance, the "
                             "predictions file) against predicting the held-out rows; report and export have no "
                             "bare counterpart."),
    ])
    return 0


if __name__ == "__main__":
    sys.exit(main())
