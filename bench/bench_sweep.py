"""Optuna sweep: median pruner vs no pruner (wall time, best validation value) and sweep overhead.

Usage: python bench/bench_sweep.py [--quick] [--trials 20] [--sample medium] [--seed 7] [--extra key=value ...]

Runs the real CLI twice, ``python train.py -m hydra/sweeper=optuna`` with XGBoost over the search space of
``conf/hparams_search/xgboost.yaml``, ``--trials`` trials and the same TPE seed, once with
``hydra/sweeper/pruner=median`` (n_startup_trials=3, n_warmup_steps=20, as in the xgboost preset) and once with
``hydra/sweeper/pruner=nop``, both on a dataset cache warmed beforehand by one plain run.
Prints per sweep: wall seconds, best validation objective, trial states, and the share of sweep wall time spent outside fitting and predicting (per-trial manifests:
stage seconds of fit + evaluate, summed over trials, vs the sweep's wall time); then the ratios.
Goals (issue 9): pruned time <= 0.60 x unpruned with a best value within 2 %; overhead share <= 5 %.
``--quick``: sample_size=tiny, 4 trials, 60 boosting rounds, pruning after 2 trials: shows the script works.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]
from common import goal, measure, python, section, write_results  # noqa: E402
# The search space of conf/hparams_search/xgboost.yaml, given on the command line so that the pruner alone differs.
SPACE = ["model.params.learning_rate=tag(log,interval(0.01,0.3))", "model.params.max_depth=int(interval(3,10))",
         "model.params.min_child_weight=tag(log,interval(0.5,20.0))", "model.params.subsample=interval(0.5,1.0)",
         "model.params.colsample_bytree=interval(0.5,1.0)", "model.params.reg_lambda=tag(log,interval(0.01,10.0))"]


def _train(args: list[str], log: Path) -> float:
    """Run ``python train.py args``; returns wall seconds (output to ``log``; exits on failure)."""
    res = measure(python("train.py", *args), log=log)
    if res["rc"] != 0:
        sys.exit(f"`python train.py {' '.join(args)}` failed (exit {res['rc']}); its output: {log}\n" + res["tail"])
    return res["seconds"]


def _stage_seconds(stage: dict) -> float:
    """Seconds a stage ran, also when it was cut short (a pruned fit keeps them in seconds_before)."""
    return float(stage.get("seconds") or stage.get("seconds_before") or 0.0)


def summarise(sweep_dir: Path, wall: float) -> dict:
    """Best value, states and fit/predict time of one finished sweep, from its sweep.json and run manifests."""
    from kaayko_exp.runs.sweeps import best_trial, read_sweep

    sweep = read_sweep(sweep_dir)
    states: dict[str, int] = {}
    best = (best_trial(sweep) or {}).get("values", [None])[0]
    fit_predict = 0.0
    trial_seconds = sum(float(t.get("duration_s") or 0.0) for t in sweep["trials"])
    stage_totals: dict[str, float] = {}
    for trial in sorted(sweep["trials"], key=lambda t: t["number"]):
        states[trial["state"]] = states.get(trial["state"], 0) + 1
        manifest = sweep_dir / trial["run_dir"] / "manifest.json" if trial.get("run_dir") else None
        if manifest is None or not manifest.exists():
            continue
        stages = json.loads(manifest.read_text())["stages"]
        secs = {name: _stage_seconds(st) for name, st in stages.items()}
        for name, s in secs.items():
            stage_totals[name] = stage_totals.get(name, 0.0) + s
        fp = secs.get("fit", 0.0) + secs.get("evaluate", 0.0)
        fit_predict += fp
    return {"wall": wall, "best": best, "direction": str(sweep["directions"][0]).lower(), "states": states, "fit_predict": fit_predict,
            "outside_share": 1.0 - fit_predict / wall if wall > 0 else float("nan"), "stage_totals": stage_totals,
            "trial_seconds": trial_seconds,
            "outside_trials_share": 1.0 - fit_predict / trial_seconds if trial_seconds > 0 else float("nan"),
            "trials": len(sweep["trials"])}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="tiny sample, 4 trials: checks the script works")
    ap.add_argument("--trials", type=int, default=None)
    ap.add_argument("--sample", default=None)
    ap.add_argument("--seed", type=int, default=7, help="TPE sampler seed, the same for both sweeps")
    ap.add_argument("--startup", type=int, default=None, help="median pruner n_startup_trials (default 3)")
    ap.add_argument("--warmup", type=int, default=20, help="median pruner n_warmup_steps (boosting rounds)")
    ap.add_argument("--keep", type=Path, default=None, help="keep the sweep dirs here instead of a temp dir")
    ap.add_argument("--extra", nargs="*", default=[], help="more overrides for both sweeps")
    ap.add_argument("--json", default=None, help="write the results here (bench/run_all.py)")
    args = ap.parse_args()
    trials = args.trials or (4 if args.quick else 20)
    sample = args.sample or ("tiny" if args.quick else "medium")
    quick = ["model.params.n_estimators=60"] if args.quick else []

    with tempfile.TemporaryDirectory() as d:
        tmp = args.keep or Path(d)
        tmp.mkdir(parents=True, exist_ok=True)
        common = ["model=xgboost", f"sample_size={sample}", f"cache_dir={tmp / 'cache'}", "plots=false", *quick]
        startup = args.startup if args.startup is not None else (2 if args.quick else 3)
        pruners = {"no pruner": ["hydra/sweeper/pruner=nop"],
                   "median pruner": ["hydra/sweeper/pruner=median", f"hydra.sweeper.pruner.n_startup_trials={startup}",
                                     f"hydra.sweeper.pruner.n_warmup_steps={args.warmup}"]}
        print(f"warming the dataset cache: sample_size={sample} ...", flush=True)
        _train([*common, f"hydra.run.dir={tmp / 'warmup'}", "checkpointing=off"], tmp / "warmup.log")
        results = {}
        for label, pruner in pruners.items():
            tag = label.split()[0]
            sweep_dir = tmp / f"sweep-{tag}"
            print(f"sweep with {' '.join(pruner)}: {trials} trials ...", flush=True)
            wall = _train(["-m", "hydra/sweeper=optuna", *common, *SPACE, f"hydra.sweep.dir={sweep_dir}",
                           f"hydra.sweeper.n_trials={trials}", "hydra.sweeper.n_jobs=1",
                           f"hydra.sweeper.sampler.seed={args.seed}", *pruner, *args.extra], tmp / f"sweep-{tag}.log")
            results[label] = summarise(sweep_dir, wall)

    print()
    print(f"XGBoost, sample_size={sample}, {trials} trials, TPE seed {args.seed}, objective "
          f"({results['no pruner']['direction']}) from sweep.json")
    print(f"{'':<14} {'wall s':>8} {'best value':>12} {'fit+eval s':>11} {'outside fit/predict':>20}  states")
    for label, r in results.items():
        best = "n/a" if r["best"] is None else f"{r['best']:.5f}"
        states = ", ".join(f"{k} {v}" for k, v in sorted(r["states"].items()))
        print(f"{label:<14} {r['wall']:8.1f} {best:>12} {r['fit_predict']:11.1f} {100 * r['outside_share']:19.1f} %  "
              f"{states}")
    for label, r in results.items():
        totals = ", ".join(f"{k} {v:.1f}" for k, v in r["stage_totals"].items())
        print(f"  {label} stage seconds summed over trials: {totals}; trial durations (sweep.json) "
              f"{r['trial_seconds']:.1f} s, of which {100 * r['outside_trials_share']:.1f} % outside fit+evaluate "
              f"(the rest of the wall time: process start, study set-up, reports)")
    base, pruned = results["no pruner"], results["median pruner"]
    time_ratio = pruned["wall"] / base["wall"]
    print(f"time ratio pruned/unpruned: {time_ratio:.3f} (saves {100 * (1 - time_ratio):.1f} %; goal >= 40 %)"
          f"  -> {'OK' if time_ratio <= 0.60 else 'MISSED'}")
    gap = None
    if base["best"] is not None and pruned["best"] is not None and base["best"] != 0:
        gap = (pruned["best"] - base["best"]) / abs(base["best"])
        if not base["direction"].endswith("minimize"):
            gap = -gap
        print(f"best value pruned vs unpruned: {100 * gap:+.2f} % (worse when > 0; goal <= 2 %)"
              f"  -> {'OK' if gap <= 0.02 else 'MISSED'}")
    for label, r in results.items():
        print(f"share of wall time outside fit+evaluate ({label}): {100 * r['outside_share']:.1f} % (goal <= 5 %)"
              f"  -> {'OK' if r['outside_share'] <= 0.05 else 'MISSED'}")
    write_results(args.json, _sections(results, sample, trials, args.seed, time_ratio, gap))


def _sections(results: dict, sample: str, trials: int, seed: int, time_ratio: float, gap) -> list:
    rows, split = [], []
    for label, r in results.items():
        states = ", ".join(f"{k} {v}" for k, v in sorted(r["states"].items()))
        rows.append([label, r["wall"], r["best"], states, r["fit_predict"], f"{100 * r['outside_share']:.1f} %",
                     goal(r["outside_share"] <= 0.05)])
        totals = r["stage_totals"]
        outside = max(0.0, r["wall"] - sum(totals.values()))
        split.append([label, r["wall"], *(totals.get(s, 0.0) for s in ("dataset", "split", "features", "fit",
                                                                         "evaluate", "report", "export")), outside])
    intro = (f"XGBoost, `sample_size={sample}`, {trials} trials, the search space of `hparams_search=xgboost`, the same "
             f"TPE seed ({seed}) for both sweeps, `n_jobs=1`, dataset cache warmed first.")
    notes = [f"time ratio median pruner / no pruner: {time_ratio:.3f} (goal ≤ 0.60: {goal(time_ratio <= 0.60)})"]
    if gap is not None:
        notes.append(f"best value with pruning vs without: {100 * gap:+.2f} % (worse when > 0; goal ≤ 2 %: "
                     f"{goal(gap <= 0.02)})")
    notes.append("outside fit + evaluate: each trial's process start, Hydra composing its config, the study's "
                 "ask/tell and the sweep's output files")
    return [
        section("Optuna sweep: pruning", ["sweep", "wall s", "best val objective", "trials", "fit + evaluate s",
                                          "outside fit + evaluate", "goal ≤ 5 %"], rows, intro=intro, notes=notes),
        section("Optuna sweep: where the time goes (seconds summed over trials)",
                ["sweep", "wall", "dataset", "split", "features", "fit", "evaluate", "report", "export",
                 "outside stages"], split),
    ]

if __name__ == "__main__":
    main()
