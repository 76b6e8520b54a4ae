"""Native categorical splits against plain codes: do the category-set splits earn their fit time?

Usage: python bench/bench_encoding.py [--quick] [--json PATH] [--seeds 42] [--models xgboost,histgb]

For each model and ``features.category_splits`` in (native, codes) and each seed:
``python train.py model=M sample_size=large features.category_splits=E seed=S
evaluation.external=tests/data/kaayko_sample plots=false`` as a child (dataset cache warm). The synthetic test
set is the run's held-out lakes; the real lakes are the five Kaayko sample lakes (hourly weather with the labels
the Kaayko rule gives them), scored by the same run through ``evaluation.external``. Fit seconds come from the
run's manifest; the two encodings of one model and seed run back to back, so they see the same machine load.
Medians over the seeds. ``--quick``: sample_size=medium, one seed.
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

ENCODINGS = ("native", "codes")
EXTERNAL = "tests/data/kaayko_sample"


def one(model: str, encoding: str, sample: str, seed: int, run_dir: Path) -> dict:
    cmd = common.python("train.py", f"model={model}", f"sample_size={sample}", f"features.category_splits={encoding}",
                        f"seed={seed}", f"evaluation.external={EXTERNAL}", "plots=false", f"hydra.run.dir={run_dir}")
    res = common.measure(cmd)
    if res["rc"] != 0:
        raise SystemExit(f"{' '.join(cmd[1:])} failed:\n{res['tail']}")
    results = json.loads((run_dir / "evaluate" / "results.json").read_text())
    manifest = json.loads((run_dir / "manifest.json").read_text())
    return {"test": results["test"]["metrics"], "external": results["external"]["metrics"],
            "fit_s": float(manifest["stages"]["fit"]["seconds"]), "wall_s": res["seconds"]}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="sample_size=medium, one seed")
    ap.add_argument("--json", help="write the result sections here")
    ap.add_argument("--seeds", default="42", help="comma-separated training seeds (medians over them)")
    ap.add_argument("--models", default="xgboost,histgb")
    args = ap.parse_args(argv)
    sample = "medium" if args.quick else "large"
    seeds = [int(s) for s in args.seeds.split(",")][: 1 if args.quick else None]
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    load = [os.getloadavg()[0]]
    cells: dict[tuple[str, str], list[dict]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-encoding-") as tmp:
        for model in models:
            for seed in seeds:
                for enc in ENCODINGS:
                    r = one(model, enc, sample, seed, Path(tmp) / f"{model}-{enc}-{seed}")
                    cells.setdefault((model, enc), []).append(r)
                    print(f"{model} {enc} seed {seed}: test MAE {r['test']['mae']:.4f} acc "
                          f"{r['test']['class_accuracy']:.4f}; real lakes MAE {r['external']['mae']:.4f} acc "
                          f"{r['external']['class_accuracy']:.4f}; fit {r['fit_s']:.1f} s", flush=True)
                    load.append(os.getloadavg()[0])
    med = lambda rs, f: statistics.median(f(r) for r in rs)  # noqa: E731
    rows, notes = [], []
    for model in models:
        base = cells[(model, "native")]
        for enc in ENCODINGS:
            rs = cells[(model, enc)]
            rows.append([model, enc, med(rs, lambda r: r["test"]["mae"]), med(rs, lambda r: r["test"]["class_accuracy"]),
                         med(rs, lambda r: r["external"]["mae"]),
                         med(rs, lambda r: r["external"]["class_accuracy"]),
                         f"{med(rs, lambda r: r['fit_s']):.1f}",
                         f"{med(rs, lambda r: r['fit_s']) / med(base, lambda r: r['fit_s']):.2f}"])
        nat, cod = cells[(model, "native")], cells[(model, "codes")]
        pairs = [(a["test"]["mae"], b["test"]["mae"], a["external"]["mae"], b["external"]["mae"])
                 for a, b in zip(nat, cod)]
        notes.append(f"{model}: codes had the lower synthetic test MAE for {sum(b < a for a, b, _, _ in pairs)} of "
                     f"{len(pairs)} seeds and the lower real-lake MAE for {sum(d < c for _, _, c, d in pairs)} of "
                     f"{len(pairs)}.")
    notes.append(f"Medians over seeds {', '.join(map(str, seeds))}; sample_size={sample}; 1-minute load average "
                 f"{min(load):.1f}-{max(load):.1f} on {os.cpu_count()} cores during the runs.")
    common.write_results(args.json, [common.section(
        "Native category splits vs plain codes",
        ["model", "category_splits", "test MAE", "test class acc.", "real lakes MAE", "real lakes class acc.",
         "fit s", "fit vs native"], rows,
        intro=f"`python train.py model=M sample_size={sample} features.category_splits=E seed=S "
              f"evaluation.external={EXTERNAL} plots=false` per cell (`python bench/bench_encoding.py`). Test: the "
              "run's held-out synthetic lakes; real lakes: the five Kaayko sample lakes, labelled by the Kaayko rule.",
        notes=notes)])
    return 0


if __name__ == "__main__":
    sys.exit(main())
