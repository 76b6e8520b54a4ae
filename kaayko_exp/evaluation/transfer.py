"""Leave-one-real-lake-out transfer: train on synthetic rows, score a real lake the generator never saw.

For each lake of a real table: generate a synthetic sample *without* that lake (its name,
and every synthetic lake within ``synthetic.EXCLUDE_RADIUS_KM`` of its coordinates), fit
the model family of ``conf/model/<model>.yaml`` on the ``features`` set through
kaayko-exp's own feature and model code, predict the real lake's rows and score them
(class accuracy, MAE, within ±0.5 — :func:`kaayko_exp.evaluation.metrics.metrics`).

Leave-one-climate-type-out (``--protocol climates``, issue 19): for each Köppen group of
:data:`kaayko_exp.data.koppen.GROUPS`, generate the synthetic table without that group (its lakes, by
:func:`kaayko_exp.data.climate.koppen_group`, and its reference stations' coverage rows; the climate-agnostic
global rows stay, unchanged), fit the model, and
score a year of rule-labelled hourly rows built for each of the group's reference stations from its
published statistics by :mod:`kaayko_exp.data.station_hours` — a separate path that shares no weather code
with the generator and is never used to tune it.

It lives in ``evaluation`` (it trains and scores models; the data layer imports no model code).

Usage::

    python -m kaayko_exp.evaluation.transfer tests/data/kaayko_sample --size medium [--seed 42]
        [--model xgboost] [--json FILE] [--report DIR]
    python -m kaayko_exp.evaluation.transfer --protocol climates --size medium [--model histgb] [--json FILE]
    python -m kaayko_exp.evaluation.transfer --protocol synthetic-climates --size medium --features rule
        [--param min_samples_leaf=1]   # the validation for choosing settings: scores synthetic rows only

``--report DIR`` also writes the fidelity report (:mod:`kaayko_exp.data.fidelity`) to ``DIR``
with the per-lake transfer table in it, and exits 1 when a fidelity check fails.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

CONF = Path(__file__).resolve().parents[2] / "conf"
log = logging.getLogger(__name__)


@dataclass
class LakeResult:
    lake: str
    rows: int
    train_rows: int
    excluded: int  # synthetic lakes left out with it
    class_accuracy: float
    mae: float
    within_half: float
    seconds: float


def _rows_for(size: str | int, total: int) -> int:
    """Rows of a ``sample_size`` option (``conf/sample_size/<size>.yaml``, as training reads it) or a row count."""
    if isinstance(size, int) or str(size).isdigit():
        return int(size)
    from omegaconf import OmegaConf

    from kaayko_exp.data.sampling import resolve_rows
    from kaayko_exp.errors import ConfigError

    path = CONF / "sample_size" / f"{size}.yaml"
    if not path.is_file():
        options = sorted(p.stem for p in (CONF / "sample_size").glob("*.yaml"))
        raise ConfigError(f"size {size!r} is not known; use one of {', '.join(options)} or a row count.")
    return resolve_rows(OmegaConf.load(path), total)[0]


def _model_cfg(model: str, overrides: dict[str, Any] | None):
    """conf/model/<model>.yaml with its defaults list composed (the ensemble's ``/model@member_configs.<m>: <m>``
    entries become ``member_configs.<m>``, as Hydra composes them for ``model=ensemble``)."""
    from omegaconf import OmegaConf

    cfg = OmegaConf.load(CONF / "model" / f"{model}.yaml")
    base = OmegaConf.create({})
    for entry in cfg.pop("defaults", []) or []:
        if OmegaConf.is_dict(entry):
            for target, option in entry.items():
                _, _, path = str(target).partition("@")
                OmegaConf.update(base, path, OmegaConf.load(CONF / "model" / f"{option}.yaml"), force_add=True)
    cfg = OmegaConf.merge(base, cfg)
    for k, v in (overrides or {}).items():
        cfg.params[k] = v
    return cfg


def lake_exclusion(real_lake: pd.DataFrame) -> tuple[str, float, float]:
    """(name, lat, lng) of a real lake's rows: what the generator must leave out."""
    name = str(real_lake["lake"].iloc[0])
    return name, float(real_lake["latitude"].iloc[0]), float(real_lake["longitude"].iloc[0])


@dataclass
class ClimateResult:
    group: str  # the Köppen group left out of the generator
    station: str
    koppen: str
    rows: int
    train_rows: int
    class_accuracy: float
    mae: float
    within_half: float
    seconds: float  # fit (shared by the group's stations) + scoring


#: ``global_share`` of the protocols' training samples: as ``python train.py`` draws them by default
#: (``synthetic.DEFAULT_GLOBAL_SHARE``, the value of conf/data/synthetic.yaml).
TRAINING_DEFAULT = "default"


def _complete_rows() -> int:
    from kaayko_exp.data import synthetic

    return synthetic.complete_rows()


def synthetic_without(exclude: tuple, rows: int, seed: int, *, total_rows: int | None = None,
                      n_lakes: int | None = None, exclude_group: str | None = None,
                      global_share: float | str | None = TRAINING_DEFAULT) -> pd.DataFrame:
    """A seeded synthetic sample of ``rows`` rows of the complete table (lake and coverage rows) without the
    ``exclude`` lakes and, when given, without the Köppen group ``exclude_group``; ``global_share`` of them
    from the global component (:data:`TRAINING_DEFAULT`: training's ``data.global_share``; None: uniform)."""
    from kaayko_exp.data import synthetic, synthetic_positions

    if global_share == TRAINING_DEFAULT:
        global_share = synthetic.DEFAULT_GLOBAL_SHARE

    total = int(total_rows or synthetic.DEFAULT_TOTAL_ROWS)
    lakes = int(n_lakes or synthetic.DEFAULT_LAKES)
    complete = synthetic.layout(total, lakes, tuple(exclude), synthetic.DEFAULT_COVERAGE, exclude_group).total_rows
    positions = synthetic_positions({"rows": min(rows, complete), "seed": seed, "coverage": synthetic.DEFAULT_COVERAGE,
                                     "global_share": global_share}, complete)
    return synthetic.generate_rows(positions, seed=seed, total_rows=total, n_lakes=lakes, exclude=tuple(exclude),
                                   exclude_group=exclude_group)


def _fit(train: pd.DataFrame, *, model: str, features: str, params: dict[str, Any] | None, seed: int, n_jobs: int):
    """(spec, fitted model) on ``train`` through kaayko-exp's own feature and model code."""
    from omegaconf import OmegaConf

    from kaayko_exp.features.spec import build_spec, transform
    from kaayko_exp.models import build_model

    spec = build_spec(OmegaConf.load(CONF / "features" / f"{features}.yaml"), train)
    fitted = build_model(_model_cfg(model, params), seed=seed, n_jobs=n_jobs, n_rows=len(train))
    fitted.fit(transform(spec, train), train["paddle_score"].to_numpy(np.float64), spec=spec)
    return spec, fitted


def score_lake(real_lake: pd.DataFrame, *, rows: int, seed: int = 42, model: str = "xgboost",
               features: str = "standard", params: dict[str, Any] | None = None, n_jobs: int = -1,
               global_share: float | str | None = TRAINING_DEFAULT) -> LakeResult:
    """Train on synthetic rows without this lake, score its real rows."""
    from kaayko_exp.data import synthetic
    from kaayko_exp.evaluation.metrics import metrics
    from kaayko_exp.features.spec import transform

    started = time.perf_counter()
    exclude = (lake_exclusion(real_lake),)
    train = synthetic_without(exclude, rows, seed, global_share=global_share)
    kept = len(synthetic.layout(synthetic.DEFAULT_TOTAL_ROWS, synthetic.DEFAULT_LAKES, exclude).lakes)
    assert exclude[0][0] not in set(train["lake"].astype(str)), "held-out lake leaked into training"
    spec, fitted = _fit(train, model=model, features=features, params=params, seed=seed, n_jobs=n_jobs)
    pred = fitted.predict(transform(spec, real_lake))
    m = metrics(real_lake["paddle_score"].to_numpy(np.float64), pred)
    return LakeResult(lake=exclude[0][0], rows=len(real_lake), train_rows=len(train),
                      excluded=synthetic.DEFAULT_LAKES - kept, class_accuracy=m["class_accuracy"], mae=m["mae"],
                      within_half=m["within_half"], seconds=round(time.perf_counter() - started, 1))


def leave_one_lake_out(real: pd.DataFrame, *, size: str | int = "medium", seed: int = 42, model: str = "xgboost",
                       features: str = "standard", params: dict[str, Any] | None = None,
                       lakes: Sequence[str] | None = None,
                       global_share: float | str | None = TRAINING_DEFAULT) -> list[LakeResult]:
    """One :class:`LakeResult` per real lake (sorted by name), each from its own synthetic training set."""
    rows = _rows_for(size, _complete_rows())
    parts = [(name, part) for name, part in real.groupby(real["lake"].astype(str), sort=True, observed=True)
             if not lakes or name in lakes]
    out = []
    started = time.perf_counter()
    for i, (name, part) in enumerate(parts, 1):
        # each held-out lake trains its own model (minutes at large sizes): say which one runs, and its result
        log.info("[%d/%d] %s: training %s on %s synthetic rows without it, then scoring its %s real rows",
                 i, len(parts), name, model, f"{rows:,}", f"{len(part):,}")
        res = score_lake(part.reset_index(drop=True), rows=rows, seed=seed, model=model, features=features,
                         params=params, global_share=global_share)
        log.info("[%d/%d] %s: MAE %.4f, class accuracy %.4f, within ±0.5 %.4f (%.1f s; %.0f s in all)", i,
                 len(parts), name, res.mae, res.class_accuracy, res.within_half, res.seconds,
                 time.perf_counter() - started)
        out.append(res)
    return out


def leave_one_climate_out(groups: Sequence[str] | None = None, *, size: str | int = "medium", seed: int = 42,
                          model: str = "xgboost", features: str = "standard", params: dict[str, Any] | None = None,
                          n_jobs: int = -1, global_share: float | str | None = TRAINING_DEFAULT) -> list[ClimateResult]:
    """One :class:`ClimateResult` per reference station: trained without its Köppen group, scored on its
    station rows (:func:`kaayko_exp.data.station_hours.station_rows`, seed ``seed``)."""
    from kaayko_exp.data import koppen, station_hours
    from kaayko_exp.evaluation.metrics import metrics
    from kaayko_exp.features.spec import transform

    rows = _rows_for(size, _complete_rows())
    out = []
    groups = list(groups or koppen.GROUPS)
    for i, group in enumerate(groups, 1):
        started = time.perf_counter()
        log.info("[%d/%d] %s: training %s on %s synthetic rows without it", i, len(groups), group, model, f"{rows:,}")
        train = synthetic_without((), rows, seed, exclude_group=group, global_share=global_share)
        held = {f"{st.name} ({st.koppen})" for st in koppen.stations(group)}
        assert not held & set(train["lake"].astype(str)), "held-out climate's stations leaked into training"
        spec, fitted = _fit(train, model=model, features=features, params=params, seed=seed, n_jobs=n_jobs)
        for st in koppen.stations(group):
            test = station_hours.station_rows(st, seed=seed)
            m = metrics(test["paddle_score"].to_numpy(np.float64), fitted.predict(transform(spec, test)))
            res = ClimateResult(group=group, station=st.name, koppen=st.koppen, rows=len(test), train_rows=len(train),
                                class_accuracy=m["class_accuracy"], mae=m["mae"], within_half=m["within_half"],
                                seconds=round(time.perf_counter() - started, 1))
            log.info("[%d/%d] %s %s: MAE %.4f, class accuracy %.4f", i, len(groups), st.koppen, st.name, res.mae,
                     res.class_accuracy)
            out.append(res)
    return out


def synthetic_climate_validation(groups: Sequence[str] | None = None, *, size: str | int = "medium", seed: int = 42,
                                 model: str = "xgboost", features: str = "standard",
                                 params: dict[str, Any] | None = None, n_jobs: int = -1,
                                 val_rows: int = 60_000,
                                 global_share: float | str | None = TRAINING_DEFAULT) -> list[ClimateResult]:
    """Leave-one-climate-type-out scored on the held-out group's own *synthetic* rows (its lakes and its
    stations' coverage rows, drawn at ``seed + 1000`` from the complete table): the validation for choosing
    settings. It never reads the station rows that :func:`leave_one_climate_out` scores."""
    from kaayko_exp.data import koppen, synthetic
    from kaayko_exp.data.sampling import sample_positions
    from kaayko_exp.evaluation.metrics import metrics
    from kaayko_exp.features.spec import transform

    rows = _rows_for(size, _complete_rows())
    full = synthetic.layout()
    pos = sample_positions(full.total_rows, min(val_rows, full.total_rows), seed + 1000)
    pool = synthetic.generate_rows(pos, seed=seed + 1000)
    out = []
    groups = list(groups or koppen.GROUPS)
    for i, group in enumerate(groups, 1):
        started = time.perf_counter()
        log.info("[%d/%d] %s: training %s on %s synthetic rows without it", i, len(groups), group, model, f"{rows:,}")
        kept = synthetic.layout(exclude_group=group)
        held = (set(full.lakes["name"]) - set(kept.lakes["name"])) | (set(full.stations["name"]) - set(kept.stations["name"]))
        val = pool[pool["lake"].astype(str).isin(held)].reset_index(drop=True)
        train = synthetic_without((), rows, seed, exclude_group=group, global_share=global_share)
        spec, fitted = _fit(train, model=model, features=features, params=params, seed=seed, n_jobs=n_jobs)
        m = metrics(val["paddle_score"].to_numpy(np.float64), fitted.predict(transform(spec, val)))
        res = ClimateResult(group=group, station="(synthetic rows)", koppen="-", rows=len(val), train_rows=len(train),
                            class_accuracy=m["class_accuracy"], mae=m["mae"], within_half=m["within_half"],
                            seconds=round(time.perf_counter() - started, 1))
        log.info("%s (synthetic validation): MAE %.4f, class accuracy %.4f (%d rows)", group, res.mae,
                 res.class_accuracy, res.rows)
        out.append(res)
    return out


def climate_table(results: Sequence[ClimateResult]) -> str:
    """Markdown table of leave-one-climate-type-out results."""
    lines = ["| group left out | Köppen | station | station rows | synthetic train rows | class accuracy | MAE | within ±0.5 |",
             "|---|---|---|---:|---:|---:|---:|---:|"]
    lines += [f"| {r.group} | {r.koppen} | {r.station} | {r.rows:,} | {r.train_rows:,} | {r.class_accuracy:.4f} | "
              f"{r.mae:.4f} | {r.within_half:.4f} |" for r in results]
    return "\n".join(lines)


def markdown_table(results: Sequence[LakeResult]) -> str:
    from kaayko_exp.data.fidelity import transfer_table

    return transfer_table([asdict(r) for r in results])


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m kaayko_exp.evaluation.transfer", description=__doc__.splitlines()[0])
    ap.add_argument("real", nargs="?", default=None,
                    help="directory of Kaayko <Lake>/<YYYY-MM>.csv files (or a .csv/.parquet file); not for --protocol climates")
    ap.add_argument("--protocol", choices=("lakes", "climates", "synthetic-climates"), default="lakes",
                    help="lakes: leave one real lake out (default); climates: leave one Köppen group out and score "
                         "rows built from its reference stations' published statistics; synthetic-climates: the "
                         "same, scored on the group's own synthetic rows (the validation for choosing settings)")
    ap.add_argument("--size", default="medium", help="synthetic training size: tiny|small|medium|large or a row count")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--model", default="xgboost")
    ap.add_argument("--features", default="standard")
    ap.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                    help="override a model parameter (model.params.KEY), e.g. --param max_samples=200000")
    ap.add_argument("--global-share", default=TRAINING_DEFAULT, metavar="SHARE",
                    help="share of the training sample drawn from the global coverage rows (0..1, or null for a "
                         "uniform sample); default: data.global_share of conf/data/synthetic.yaml, as training")
    ap.add_argument("--json", default=None, help="also write the per-lake results as JSON here")
    ap.add_argument("--report", default=None, metavar="DIR", help="also write the fidelity report with this table to DIR")
    args = ap.parse_args(argv)
    if not logging.getLogger().handlers:  # progress on stderr; the table alone on stdout
        logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)

    from kaayko_exp.data.sources import read_table
    from kaayko_exp.errors import KaaykoError

    import yaml

    bad = [p for p in args.param if "=" not in p or not p.partition("=")[0]]
    if bad:
        ap.error(f"--param takes KEY=VALUE (a model parameter and its value, e.g. --param max_depth=8); got {bad[0]!r}")
    params = {k: yaml.safe_load(v) for k, _, v in (p.partition("=") for p in args.param)} or None
    share = args.global_share
    if share != TRAINING_DEFAULT:
        from types import SimpleNamespace

        from kaayko_exp.data import global_share

        try:
            share = global_share(SimpleNamespace(global_share=yaml.safe_load(share)))
        except KaaykoError as exc:
            ap.error(str(exc))
    if args.protocol in ("climates", "synthetic-climates"):
        run = leave_one_climate_out if args.protocol == "climates" else synthetic_climate_validation
        results = run(size=args.size, seed=args.seed, model=args.model, features=args.features, params=params,
                      global_share=share)
        print(climate_table(results))
        if args.json:
            import json

            from kaayko_exp.atomic import write_text

            write_text(args.json, json.dumps([asdict(r) for r in results], indent=2) + "\n")
        return 0
    if args.real is None:
        print("usage error: the leave-one-lake-out protocol needs the real rows: python -m "
              "kaayko_exp.evaluation.transfer tests/data/kaayko_sample --size medium", file=sys.stderr)
        return 2
    try:
        real = read_table(args.real)
        results = leave_one_lake_out(real, size=args.size, seed=args.seed, model=args.model, features=args.features,
                                     params=params, global_share=share)
    except KaaykoError as exc:
        print(f"{exc.kind}: {exc}", file=sys.stderr)
        return exc.exit_code
    print(markdown_table(results))
    code = 0
    if args.report:
        from kaayko_exp.data import fidelity

        rows = [asdict(r) for r in results]
        res, report, _ = fidelity.run(real, out=args.report, seed=args.seed, source=args.real,
                                      transfer=(args.size, rows))
        fails = fidelity.failures(res)
        print(f"fidelity report written to {report}; {len(fails)} check(s) failed")
        code = 1 if fails else 0
    if args.json:
        import json

        from kaayko_exp.atomic import write_text

        write_text(args.json, json.dumps([asdict(r) for r in results], indent=2) + "\n")
    return code


if __name__ == "__main__":
    sys.exit(main())
