"""Optuna sweep: the xgboost study with its pruner vs without (wall time, best validation value) and sweep overhead.

Usage: python bench/bench_sweep.py [--quick] [--trials 20] [--sample medium] [--seeds 7 11 23] [--pruner k=v ...]

For each TPE seed, runs the real CLI twice, ``python train.py -m hparams_search=xgboost`` (the ready study: its
search space, sampler settings and pruner) with ``--trials`` trials, once as it is and once with
``hydra/sweeper/pruner=nop``, both on a dataset cache warmed beforehand by one plain run.
Prints per sweep: wall seconds, best validation objective, trial states, and the share of sweep wall time spent
outside fitting and predicting (per-trial manifests: stage seconds of fit + evaluate, summed over trials, vs the
sweep's wall time); then per seed the ratios, and their medians over the seeds.
Goals (issue 16, items 9 and 10): on the median over the seeds, pruned time <= 0.60 x unpruned with a best value
within 2 %; overhead share <= 5 %.
``--quick``: sample_size=tiny, 4 trials, 60 boosting rounds, pruning after 2 trials: shows the script works.
``--pruner``: overrides replacing the preset's pruner settings (to try others), e.g.
``--pruner hydra/sweeper/pruner=percentile hydra.sweeper.pruner.percentile=40``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]
from common import goal, measure, python, section, write_results  # noqa: E402

SEEDS = (7, 11, 23)


def _cpu_children() -> float:
    import resource

    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def _train(args: list[str], log: Path) -> tuple[float, float]:
    """Run ``python train.py args``; returns (wall seconds, CPU seconds of the command and its children: less
    sensitive than wall time to other load on the machine). Output to ``log``; exits on failure."""
    cpu = _cpu_children()
    res = measure(python("train.py", *args), log=log)
    if res["rc"] != 0:
        sys.exit(f"`python train.py {' '.join(args)}` failed (exit {res['rc']}); its output: {log}\n" + res["tail"])
    return res["seconds"], _cpu_children() - cpu


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


def _gap(base: dict, pruned: dict):
    """Relative loss of the pruned sweep's best value (worse when > 0), or None."""
    if base["best"] is None or pruned["best"] is None or base["best"] == 0:
        return None
    gap = (pruned["best"] - base["best"]) / abs(base["best"])
    return gap if base["direction"].endswith("minimize") else -gap


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="tiny sample, 4 trials: checks the script works")
    ap.add_argument("--trials", type=int, default=None)
    ap.add_argument("--sample", default=None)
    ap.add_argument("--seeds", type=int, nargs="+", default=list(SEEDS),
                    help="TPE sampler seeds; both sweeps of a seed use it (medians are over the seeds)")
    ap.add_argument("--threads", type=int, default=1,
                    help="learner threads per trial (n_jobs; 1: one core per trial, stable timings on a shared "
                         "machine, where XGBoost's threads slow each other down many times over)")
    ap.add_argument("--pruner", nargs="*", default=[], help="overrides replacing the preset's pruner settings")
    ap.add_argument("--keep", type=Path, default=None, help="keep the sweep dirs here instead of a temp dir")
    ap.add_argument("--reuse-baseline", action="store_true",
                    help="with --keep: reuse the unpruned sweeps kept there by an earlier run (to try pruners; "
                         "time ratios then compare different runs)")
    ap.add_argument("--extra", nargs="*", default=[], help="more overrides for both sweeps")
    ap.add_argument("--json", default=None, help="write the results here (bench/run_all.py)")
    args = ap.parse_args()
    trials = args.trials or (4 if args.quick else 20)
    sample = args.sample or ("tiny" if args.quick else "medium")
    quick = ["model.params.n_estimators=60", "hydra.sweeper.sampler.n_startup_trials=2",
             "hydra.sweeper.pruner.n_startup_trials=2", "hydra.sweeper.pruner.n_warmup_steps=20"] if args.quick else []

    runs = []  # one dict per seed: {"seed", "no pruner": summary, "pruner": summary}
    with tempfile.TemporaryDirectory() as d:
        tmp = args.keep or Path(d)
        tmp.mkdir(parents=True, exist_ok=True)
        common = ["hparams_search=xgboost", f"sample_size={sample}", f"cache_dir={tmp / 'cache'}", "plots=false",
                  f"n_jobs={args.threads}",
                  "hydra.sweeper.write_plots=false", f"hydra.sweeper.n_trials={trials}", "hydra.sweeper.n_jobs=1",
                  *quick]
        print(f"warming the dataset cache: sample_size={sample} ...", flush=True)
        shutil.rmtree(tmp / "warmup", ignore_errors=True)  # a kept dir's earlier warm-up run (a run dir is not reused)
        _train(["model=xgboost", f"sample_size={sample}", f"cache_dir={tmp / 'cache'}", "plots=false", *quick[:1],
                f"n_jobs={args.threads}",
                f"hydra.run.dir={tmp / 'warmup'}", "checkpointing=off"], tmp / "warmup.log")
        variants = {"no pruner": ["hydra/sweeper/pruner=nop"], "pruner": list(args.pruner)}
        for seed in args.seeds:
            run = {"seed": seed}
            for label, pruner in variants.items():
                tag = f"{label.split()[0]}-s{seed}"
                sweep_dir = tmp / f"sweep-{tag}"
                kept = tmp / f"sweep-{tag}.json"
                if label == "no pruner" and args.reuse_baseline and kept.exists():
                    run[label] = json.loads(kept.read_text())
                    print(f"seed {seed}: unpruned sweep reused from {sweep_dir}", flush=True)
                    continue
                print(f"seed {seed}: sweep {'with the preset pruner' if label == 'pruner' else 'without pruner'}"
                      f"{' ' + ' '.join(pruner) if pruner else ''}: {trials} trials ...", flush=True)
                shutil.rmtree(sweep_dir, ignore_errors=True)  # a kept dir's earlier sweep: a fresh study, not its rest
                wall, cpu = _train(["-m", *common, f"hydra.sweep.dir={sweep_dir}", f"hydra.sweeper.sampler.seed={seed}",
                               *pruner, *args.extra], tmp / f"sweep-{tag}.log")
                run[label] = summarise(sweep_dir, wall)
                run[label]["cpu"] = cpu
                kept.write_text(json.dumps(run[label], indent=1))
            run["time_ratio"] = run["pruner"]["wall"] / run["no pruner"]["wall"]
            run["cpu_ratio"] = run["pruner"]["cpu"] / run["no pruner"]["cpu"]
            run["gap"] = _gap(run["no pruner"], run["pruner"])
            runs.append(run)

    print()
    print(f"XGBoost, hparams_search=xgboost, sample_size={sample}, {trials} trials, TPE seeds {args.seeds}, "
          f"objective ({runs[0]['no pruner']['direction']}) from sweep.json")
    print(f"{'':<20} {'wall s':>8} {'best value':>12} {'fit+eval s':>11} {'outside fit/eval':>17}  states")
    for run in runs:
        for label in ("no pruner", "pruner"):
            r = run[label]
            best = "n/a" if r["best"] is None else f"{r['best']:.5f}"
            states = ", ".join(f"{k} {v}" for k, v in sorted(r["states"].items()))
            print(f"{label + ' seed ' + str(run['seed']):<20} {r['wall']:8.1f} {best:>12} {r['fit_predict']:11.1f} "
                  f"{100 * r['outside_share']:16.1f} %  {states}")
        gap = "n/a" if run["gap"] is None else f"{100 * run['gap']:+.2f} %"
        print(f"  seed {run['seed']}: time ratio {run['time_ratio']:.3f} (CPU time {run['cpu_ratio']:.3f}), best value pruned vs unpruned {gap}")
    med = _medians(runs)
    print(f"median time ratio pruned/unpruned: {med['time_ratio']:.3f} (saves {100 * (1 - med['time_ratio']):.1f} %; "
          f"goal >= 40 %)  -> {'OK' if med['time_ratio'] <= 0.60 else 'MISSED'}; CPU time ratio {med['cpu_ratio']:.3f}")
    if med["gap"] is not None:
        print(f"median best value pruned vs unpruned: {100 * med['gap']:+.2f} % (worse when > 0; goal <= 2 %)"
              f"  -> {'OK' if med['gap'] <= 0.02 else 'MISSED'}")
    for label in ("no pruner", "pruner"):
        share = med[label]["outside_share"]
        print(f"median share of wall time outside fit+evaluate ({label}): {100 * share:.1f} % (goal <= 5 %)"
              f"  -> {'OK' if share <= 0.05 else 'MISSED'}; of trial durations: "
              f"{100 * med[label]['outside_trials_share']:.1f} %")
    print(_limits(runs, med, trials))
    write_results(args.json, _sections(runs, med, sample, trials, args.seeds, args.pruner, args.threads))


def _limits(runs: list, med: dict, trials: int) -> str:
    """Where the unpruned sweep's time outside fit + evaluate goes (medians over the seeds), and so what limits
    the overhead share."""
    parts = {
        "outside the trials (process start and imports, study set-up, ask/tell, between trials)":
            statistics.median(r["no pruner"]["wall"] - r["no pruner"]["trial_seconds"] for r in runs),
        "inside the trials but outside every stage (Hydra's job set-up and config files, config checks, the "
        "run's manifest)": statistics.median(r["no pruner"]["trial_seconds"] - sum(r["no pruner"]["stage_totals"].values())
                                             for r in runs),
        **{f"{stage} stage": statistics.median(r["no pruner"]["stage_totals"].get(stage, 0.0) for r in runs)
           for stage in ("dataset", "split", "features", "report", "export")},
    }
    wall = med["no pruner"]["wall"]
    listed = "; ".join(f"{name} {secs:.1f} s ({1000 * secs / trials:.0f} ms a trial, {100 * secs / wall:.1f} %)"
                       for name, secs in sorted(parts.items(), key=lambda kv: -kv[1]))
    outside = wall * med["no pruner"]["outside_share"]
    verdict = "met" if med["no pruner"]["outside_share"] <= 0.05 else (
        f"missed: it allows {0.05 * wall:.1f} s of this {wall:.0f} s sweep, against {outside:.1f} s outside fit + "
        f"evaluate, the parts above (largest first) together")
    return f"time outside fit + evaluate (no pruner, medians over the seeds): {listed}; goal ≤ 5 % {verdict}"


def _medians(runs: list) -> dict:
    gaps = [r["gap"] for r in runs if r["gap"] is not None]
    out = {"time_ratio": statistics.median(r["time_ratio"] for r in runs),
           "cpu_ratio": statistics.median(r["cpu_ratio"] for r in runs),
           "gap": statistics.median(gaps) if gaps else None}
    for label in ("no pruner", "pruner"):
        out[label] = {k: statistics.median(r[label][k] for r in runs)
                      for k in ("wall", "fit_predict", "outside_share", "outside_trials_share")}
    return out


def _sections(runs: list, med: dict, sample: str, trials: int, seeds: list, pruner: list, threads: int) -> list:
    rows, split = [], []
    for run in runs:
        for label in ("no pruner", "pruner"):
            r = run[label]
            states = ", ".join(f"{k} {v}" for k, v in sorted(r["states"].items()))
            rows.append([run["seed"], label, r["wall"], r["best"], states, r["fit_predict"],
                         f"{100 * r['outside_share']:.1f} %"])
            totals = r["stage_totals"]
            outside = max(0.0, r["wall"] - sum(totals.values()))
            split.append([run["seed"], label, r["wall"], *(totals.get(s, 0.0) for s in (
                "dataset", "split", "features", "fit", "evaluate", "report", "export")), outside])
    what = "its pruner" + (f" replaced by `{' '.join(pruner)}`" if pruner else "")
    intro = (f"`python train.py -m hparams_search=xgboost` ({what}) against the same with `hydra/sweeper/pruner=nop`, "
             f"`sample_size={sample}`, {trials} trials one at a time, `n_jobs={threads}` learner thread(s), dataset cache warmed first; one pair of sweeps per "
             f"TPE seed ({', '.join(map(str, seeds))}), both sweeps of a pair with the same seed.")
    notes = []
    for run in runs:
        gap = "n/a" if run["gap"] is None else f"{100 * run['gap']:+.2f} %"
        notes.append(f"seed {run['seed']}: time ratio {run['time_ratio']:.3f} (CPU time {run['cpu_ratio']:.3f}), best value with pruning vs "
                     f"without {gap}")
    notes.append(f"median time ratio pruner / no pruner: {med['time_ratio']:.3f} (goal ≤ 0.60: "
                 f"{goal(med['time_ratio'] <= 0.60)}); CPU time ratio {med['cpu_ratio']:.3f}")
    if med["gap"] is not None:
        notes.append(f"median best value with pruning vs without: {100 * med['gap']:+.2f} % (worse when > 0; "
                     f"goal ≤ 2 %: {goal(med['gap'] <= 0.02)})")
    for label in ("no pruner", "pruner"):
        share = med[label]["outside_share"]
        notes.append(f"median share of wall time outside fit + evaluate ({label}): {100 * share:.1f} % (goal ≤ 5 %: "
                     f"{goal(share <= 0.05)}); of the trials' own durations: "
                     f"{100 * med[label]['outside_trials_share']:.1f} %")
    notes.append("outside fit + evaluate: the sweep process's start and imports, the dataset/split/features/report/"
                 "export stages of each trial, Hydra's job set-up, the study's ask/tell and the sweep's output files")
    notes.append(_limits(runs, med, trials))
    return [
        section("Optuna sweep: pruning", ["seed", "sweep", "wall s", "best val objective", "trials",
                                          "fit + evaluate s", "outside fit + evaluate"], rows, intro=intro,
                notes=notes),
        section("Optuna sweep: where the time goes (seconds summed over trials)",
                ["seed", "sweep", "wall", "dataset", "split", "features", "fit", "evaluate", "report", "export",
                 "outside stages"], split),
    ]


if __name__ == "__main__":
    main()
