"""XGBoost on a GPU: `model.params.device=cuda` through kaayko-exp's own fit loop.

Usage: python bench/check_cuda.py [--rows 200000] [--rounds 300]

Fits the xgboost model family on synthetic rows with device=cpu and device=cuda
(same seed, subsample/colsample < 1), prints fit seconds and their ratio, how far the
two models' predictions differ, and checks that a cuda fit killed at a checkpoint
and resumed gives exactly the uninterrupted cuda model. Needs a CUDA-enabled XGBoost.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from omegaconf import OmegaConf

from kaayko_exp.config import ModelConfig, SplitConfig
from kaayko_exp.data import load_dataset
from kaayko_exp.features.spec import build_spec, transform
from kaayko_exp.features.splits import split_rows
from kaayko_exp.models import build_model
from kaayko_exp.models.callbacks import FitCallback


class Kill(Exception):
    pass


class DirHooks(FitCallback):
    """Checkpoints in a directory (a fit callback and resume source); optionally 'dies' after round ``kill_at``."""

    def __init__(self, root: Path, every: int, kill_at: int | None = None):
        self.root, self.every, self.kill_at, self.saved = root, every, kill_at, None

    def restore(self, key):
        return self.saved

    def after_step(self, key, done, total, score=None, save=None):
        if save is not None and done < total and done % self.every == 0:
            d = self.root / f"{done:07d}"
            d.mkdir(parents=True, exist_ok=True)
            save(d)
            self.saved = (d, done)
        if self.kill_at == done:
            raise Kill()


def fit(device, X, y, spec, Xv, yv, rounds, hooks=None):
    cfg = OmegaConf.structured(ModelConfig(name="xgboost", params={
        "n_estimators": rounds, "max_depth": 8, "subsample": 0.8, "colsample_bytree": 0.8, "device": device}))
    model = build_model(cfg, seed=7, n_jobs=-1, n_rows=len(y))
    t0 = time.perf_counter()
    model.fit(X, y, spec=spec, callbacks=[hooks] if hooks else None, resume=hooks, X_val=Xv, y_val=yv)
    return model, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=200_000)
    ap.add_argument("--rounds", type=int, default=300)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        data_cfg = OmegaConf.create({"source": "synthetic", "path": None, "label_noise": 0.0,
                                     "total_rows": 2_434_601, "lakes": 100})
        frame, _ = load_dataset(data_cfg, OmegaConf.create({"name": "rows", "fraction": None, "rows": args.rows}),
                                seed=42, cache_dir=tmp / "cache")
        spec = build_spec(OmegaConf.load(Path(__file__).parents[1] / "conf" / "features" / "standard.yaml"), frame)
        X, y = transform(spec, frame), frame["paddle_score"].to_numpy(np.float64)
        parts = split_rows(frame, OmegaConf.structured(SplitConfig()), 42)
        tr, va, te = parts["train"], parts["val"], parts["test"]
        cpu, t_cpu = fit("cpu", X[tr], y[tr], spec, X[va], y[va], args.rounds)
        gpu, t_gpu = fit("cuda", X[tr], y[tr], spec, X[va], y[va], args.rounds)
        p_cpu, p_gpu = cpu.predict(X[te]), gpu.predict(X[te])
        rmse = lambda p: float(np.sqrt(np.mean((p - y[te]) ** 2)))  # noqa: E731
        print(f"rows {len(tr):,} train / {len(te):,} test, {args.rounds} rounds, depth 8")
        print(f"fit seconds: cpu {t_cpu:.2f}  cuda {t_gpu:.2f}  ratio cuda/cpu {t_gpu / t_cpu:.3f}")
        print(f"test rmse: cpu {rmse(p_cpu):.5f}  cuda {rmse(p_gpu):.5f}; max |cpu - cuda| {np.max(np.abs(p_cpu - p_gpu)):.2e}")
        every = max(1, args.rounds // 6)
        hooks = DirHooks(tmp / "ck", every, kill_at=3 * every + 1)
        try:
            fit("cuda", X[tr], y[tr], spec, X[va], y[va], args.rounds, hooks)
        except Kill:
            pass
        hooks.kill_at = None
        resumed, _ = fit("cuda", X[tr], y[tr], spec, X[va], y[va], args.rounds, hooks)
        same = np.array_equal(resumed.predict(X[te]), p_gpu)
        print(f"cuda kill at round {3 * every + 1}, resume from {3 * every}: identical to uninterrupted cuda fit: {same}")


if __name__ == "__main__":
    main()
