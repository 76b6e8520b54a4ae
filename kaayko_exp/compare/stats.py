"""Honest win rates: runs compared lake by lake against the true held-out labels.

Only runs evaluated on the same held-out rows are compared. Each run's report records a hash of
the split assignment and of the held-out labels (``RunRecord.test_set``); runs are grouped by that
pair, and inside a group the labels read back from each run's ``predictions/test.parquet`` must
agree row for row. :func:`win_rates` says which groups it formed and why runs were left out.

For every ordered pair of runs (i, j) in a group, over the held-out lakes:

* ``win_rate``: share of lakes where run i has the lower MAE; a tie (|Δ| ≤ ``TIE_TOLERANCE``)
  counts one half and is counted in ``ties``;
* ``mean_diff``: mean over lakes of MAE_i − MAE_j (negative: run i has the lower error), with a
  percentile bootstrap 95 % confidence interval over lakes (seeded numpy);
* ``p_value``: a paired Wilcoxon signed-rank test over lakes (``scipy.stats.wilcoxon``, two-sided);
  ``significant`` is ``p_value < alpha``. With few lakes no difference can be significant (4 lakes:
  the smallest two-sided p is 0.125) and the table says so.

Prediction files are read only here, only the three columns needed, and only for runs that have a
test set to compare on.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, Optional, Sequence

import numpy as np

from kaayko_exp.compare.records import RunRecord

LAKE = "lake"
LABEL = "paddle_score"
PREDICTION = "prediction"
COLUMNS = (LAKE, LABEL, PREDICTION)
TIE_TOLERANCE = 1e-12
DEFAULT_RESAMPLES = 2000
DEFAULT_ALPHA = 0.05
DEFAULT_MAX_RUNS = 30  # runs in one matrix: pairs grow as the square


@dataclass
class PairStats:
    """Run ``i`` against run ``j`` over the lakes of their shared test set."""

    i: str
    j: str
    n_lakes: int
    wins: int  # lakes where i has the lower MAE
    losses: int
    ties: int
    win_rate: float  # (wins + ties / 2) / n_lakes
    mean_diff: float  # mean over lakes of MAE_i − MAE_j
    ci_low: float
    ci_high: float
    p_value: float
    significant: bool


@dataclass
class TestSetGroup:
    """Runs evaluated on the same held-out rows, with their per-lake MAE and the pairwise statistics."""

    split_sha256: str
    labels_sha256: str
    runs: list[str]  # RunRecord.shown, in input order
    lakes: list[str]
    lake_mae: np.ndarray  # shape (n_lakes, n_runs)
    lake_rows: np.ndarray  # held-out rows per lake, shape (n_lakes,)
    pairs: dict[tuple[int, int], PairStats]  # ordered pairs of run indexes, i != j
    n_rows: int
    alpha: float = DEFAULT_ALPHA

    @property
    def name(self) -> str:
        return f"split {self.split_sha256[:8]}…, labels {self.labels_sha256[:8]}…"

    def win_rate_matrix(self) -> np.ndarray:
        """``m[i, j]``: share of lakes where run i has the lower MAE than run j (NaN on the diagonal)."""
        k = len(self.runs)
        m = np.full((k, k), np.nan)
        for (i, j), p in self.pairs.items():
            m[i, j] = p.win_rate
        return m

    def significance_matrix(self) -> np.ndarray:
        """``s[i, j]``: the Wilcoxon difference between runs i and j is significant (False on the diagonal)."""
        k = len(self.runs)
        s = np.zeros((k, k), dtype=bool)
        for (i, j), p in self.pairs.items():
            s[i, j] = p.significant
        return s

    def mean_lake_mae(self) -> np.ndarray:
        """Each run's MAE averaged over lakes (every lake weighs the same)."""
        return self.lake_mae.mean(axis=0)


@dataclass
class WinRates:
    """What :func:`win_rates` found: the comparable groups, the runs left out and a sentence for each."""

    groups: list[TestSetGroup] = field(default_factory=list)
    left_out: list[tuple[str, str]] = field(default_factory=list)  # (run shown, reason)
    notes: list[str] = field(default_factory=list)  # one line per group formed and per run left out


# ------------------------------------------------------------------------------------------- statistics
def pair_stats(mae_i: Sequence[float], mae_j: Sequence[float], *, i: str = "i", j: str = "j",
               resamples: int = DEFAULT_RESAMPLES, seed: int = 0, alpha: float = DEFAULT_ALPHA,
               boot_diffs: Optional[np.ndarray] = None) -> PairStats:
    """Win rate, mean difference with a bootstrap CI, and Wilcoxon p-value for two per-lake MAE vectors.

    ``boot_diffs``: bootstrap means of the differences already drawn (a group draws one set of
    resampled lakes for all its pairs); drawn here with ``resamples``/``seed`` when None.
    """
    a = np.asarray(mae_i, dtype=np.float64)
    b = np.asarray(mae_j, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1 or a.size == 0:
        raise ValueError(f"per-lake MAE vectors must be non-empty and of one length, got {a.shape} and {b.shape}")
    d = a - b
    tie = np.abs(d) <= TIE_TOLERANCE
    wins = int(np.sum(~tie & (d < 0)))
    losses = int(np.sum(~tie & (d > 0)))
    ties = int(np.sum(tie))
    n = int(d.size)
    if boot_diffs is None:
        low, high = bootstrap_ci(d, resamples=resamples, seed=seed)
    else:
        low, high = _percentiles(boot_diffs)
    p = wilcoxon_p(np.where(tie, 0.0, d))
    return PairStats(i=i, j=j, n_lakes=n, wins=wins, losses=losses, ties=ties, win_rate=(wins + 0.5 * ties) / n,
                     mean_diff=float(np.mean(d)), ci_low=low, ci_high=high, p_value=p,
                     significant=bool(p < alpha))


def bootstrap_ci(diffs: Sequence[float], *, resamples: int = DEFAULT_RESAMPLES, seed: int = 0,
                 level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap CI of the mean of ``diffs``, resampling the lakes with replacement."""
    d = np.asarray(diffs, dtype=np.float64)
    return _percentiles(bootstrap_means(d[:, None], resamples=resamples, seed=seed)[:, 0], level)


def bootstrap_means(values: np.ndarray, *, resamples: int = DEFAULT_RESAMPLES, seed: int = 0) -> np.ndarray:
    """Column means of ``values`` (lakes × runs) over ``resamples`` resamplings of the lakes: (resamples, runs)."""
    v = np.asarray(values, dtype=np.float64)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, v.shape[0], size=(int(resamples), v.shape[0]))
    counts = np.zeros((int(resamples), v.shape[0]))
    np.add.at(counts, (np.arange(int(resamples))[:, None], idx), 1.0)  # how often each lake was drawn
    return counts @ v / v.shape[0]


def _percentiles(means: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    tail = (1.0 - level) / 2.0
    low, high = np.quantile(np.asarray(means, dtype=np.float64), [tail, 1.0 - tail])
    return float(low), float(high)


def wilcoxon_p(diffs: Sequence[float]) -> float:
    """Two-sided paired Wilcoxon signed-rank p-value of per-lake differences; 1.0 when every difference is 0."""
    from scipy.stats import wilcoxon

    d = np.asarray(diffs, dtype=np.float64)
    if not np.any(d != 0):
        return 1.0
    result = wilcoxon(d, zero_method="wilcox", alternative="two-sided")
    return float(result.pvalue)


# ------------------------------------------------------------------------------------------- grouping
def _short(h: str) -> str:
    return f"{h[:8]}…"


def _read_predictions(record: RunRecord) -> tuple[Optional[Any], str]:
    """The lake, label and prediction columns of a run's held-out predictions, or None and the reason."""
    import pandas as pd

    path = record.predictions_path
    if not path.is_file():
        return None, f"it has no {path.relative_to(record.path)} (the evaluate stage did not finish)"
    try:
        import pyarrow.parquet as pq

        names = set(pq.read_schema(path).names)
    except Exception as exc:  # a damaged file is a reason to skip the run, not a crash
        return None, f"its predictions/test.parquet cannot be read ({type(exc).__name__}: {exc})"
    missing = [c for c in COLUMNS if c not in names]
    if missing:
        return None, f"its predictions/test.parquet lacks the column(s) {', '.join(missing)}"
    frame = pd.read_parquet(path, columns=list(COLUMNS))
    n = (record.test_set or {}).get("n")
    if n is not None and int(n) != len(frame):
        return None, (f"its predictions/test.parquet has {len(frame):,} rows but report.json says the test set has "
                      f"{int(n):,}: the file does not belong to this report")
    if frame[[LABEL, PREDICTION]].isna().to_numpy().any():
        return None, "its predictions/test.parquet has missing labels or predictions"
    return frame, ""


def _rows_digest(frame: Any) -> str:
    """Hash of the held-out rows as the comparison uses them: lake and label of each row, in order."""
    h = hashlib.sha256()
    h.update(frame[LAKE].astype(str).str.cat(sep="\x1f").encode("utf-8"))
    h.update(np.ascontiguousarray(frame[LABEL].to_numpy(dtype=np.float64)).tobytes())
    return h.hexdigest()


def _per_lake_mae(frame: Any) -> tuple[list[str], np.ndarray, np.ndarray]:
    err = (frame[PREDICTION].to_numpy(dtype=np.float64) - frame[LABEL].to_numpy(dtype=np.float64))
    by = frame.assign(_abs=np.abs(err)).groupby(frame[LAKE].astype(str), sort=True)["_abs"]
    mae = by.mean()
    return [str(x) for x in mae.index], mae.to_numpy(dtype=np.float64), by.size().to_numpy()


def win_rates(records: Sequence[RunRecord], *, resamples: int = DEFAULT_RESAMPLES, seed: int = 0,
              alpha: float = DEFAULT_ALPHA, max_runs: int = DEFAULT_MAX_RUNS) -> WinRates:
    """Group runs by test set and compute the pairwise per-lake statistics inside each group of ≥ 2 runs.

    Runs that are not ``completed``, have no ``test_set`` block, no readable predictions, or labels
    that differ from the rest of their group are left out with the reason (``WinRates.left_out``);
    ``WinRates.notes`` has one sentence per group formed and per run left out. A group of more than
    ``max_runs`` runs keeps the ``max_runs`` with the lowest mean per-lake MAE (the others are named).
    Prediction files are read one at a time and reduced to per-lake MAE (memory stays small).
    """
    out = WinRates()
    by_key: dict[tuple[str, str], list[RunRecord]] = {}
    for rec in records:
        ts = rec.test_set or {}
        if rec.status != "completed":
            out.left_out.append((rec.shown, f"its status is {rec.status}, not completed"))
        elif not ts.get("split_sha256") or not ts.get("labels_sha256"):
            out.left_out.append((rec.shown, "its report.json records no test-set hashes (made before they were "
                                 "recorded?), so the test set it was evaluated on cannot be checked"))
        else:
            by_key.setdefault((str(ts["split_sha256"]), str(ts["labels_sha256"])), []).append(rec)

    # The biggest group is "the" test set; the others are named against it.
    keys = sorted(by_key, key=lambda k: -len(by_key[k]))
    main = keys[0] if keys else None
    for key in keys:
        members = by_key[key]
        if len(members) < 2:
            rec = members[0]
            if main is not None and key != main:
                what = ("different labels hash" if key[0] == main[0] else
                        "different split hash" if key[1] == main[1] else "different split and labels hashes")
                out.left_out.append((rec.shown, f"it has another test set ({what}: split {_short(key[0])}, labels "
                                     f"{_short(key[1])}) than the other runs: not compared"))
            else:
                out.left_out.append((rec.shown, f"it is the only run on test set split {_short(key[0])}, labels "
                                     f"{_short(key[1])}: nothing to compare it with"))
            continue
        group = _build_group(key, members, out, resamples=resamples, seed=seed, alpha=alpha, max_runs=max_runs)
        if group is not None:
            out.groups.append(group)

    for g in out.groups:
        out.notes.append(f"{len(g.runs)} runs share test set {g.name} ({g.n_rows:,} rows, {len(g.lakes)} lakes): "
                         f"compared lake by lake.")
    for shown, reason in out.left_out:
        out.notes.append(f"run {shown}: {reason}.")
    return out


@dataclass
class _Scored:
    """One run's held-out rows reduced to what the comparison needs (the frame itself is not kept)."""

    record: RunRecord
    digest: str
    lakes: list[str]
    mae: np.ndarray
    lake_rows: np.ndarray
    n_rows: int


def _build_group(key: tuple[str, str], members: list[RunRecord], out: WinRates, *, resamples: int, seed: int,
                 alpha: float, max_runs: int) -> Optional[TestSetGroup]:
    by_digest: dict[str, list[_Scored]] = {}
    for rec in members:
        frame, reason = _read_predictions(rec)
        if frame is None:
            out.left_out.append((rec.shown, reason))
            continue
        lakes, mae, lake_rows = _per_lake_mae(frame)
        scored = _Scored(rec, _rows_digest(frame), lakes, mae, lake_rows, len(frame))
        by_digest.setdefault(scored.digest, []).append(scored)
    if not by_digest:
        return None
    # Same labels hash in the reports, but the rows read back must agree too: keep the largest set.
    digests = sorted(by_digest, key=lambda k: -len(by_digest[k]))
    for other in digests[1:]:
        for s in by_digest[other]:
            out.left_out.append((s.record.shown, f"report.json claims test set labels {_short(key[1])} like "
                                 f"{len(by_digest[digests[0]])} other run(s), but the lakes or labels in its "
                                 "predictions/test.parquet differ from theirs (file replaced?): not compared"))
    kept = by_digest[digests[0]]
    if len(kept) < 2:
        out.left_out.append((kept[0].record.shown, "no other run on its test set has readable predictions: nothing "
                             "to compare it with"))
        return None
    if len(kept) > max_runs:
        order = np.argsort([float(np.mean(s.mae)) for s in kept], kind="stable")
        best = sorted(int(k) for k in order[:max_runs])
        for k in sorted(set(range(len(kept))) - set(best)):
            out.left_out.append((kept[k].record.shown, f"its test set has {len(kept)} runs and the matrix shows the "
                                 f"{max_runs} with the lowest mean per-lake MAE (max_runs={max_runs}); this run is "
                                 "not among them"))
        kept = [kept[k] for k in best]
    mae = np.column_stack([s.mae for s in kept])
    runs = [s.record.shown for s in kept]
    boot = bootstrap_means(mae, resamples=resamples, seed=seed)  # one set of resampled lakes for every pair
    pairs: dict[tuple[int, int], PairStats] = {}
    for i in range(len(runs)):
        for j in range(i + 1, len(runs)):
            p = pair_stats(mae[:, i], mae[:, j], i=runs[i], j=runs[j], alpha=alpha,
                           boot_diffs=boot[:, i] - boot[:, j])
            pairs[(i, j)] = p
            pairs[(j, i)] = _mirror(p)
    return TestSetGroup(split_sha256=key[0], labels_sha256=key[1], runs=runs,
                        lakes=kept[0].lakes, lake_mae=mae, lake_rows=np.asarray(kept[0].lake_rows), pairs=pairs,
                        n_rows=kept[0].n_rows, alpha=alpha)


def _mirror(p: PairStats) -> PairStats:
    """Run j against run i, from run i against run j."""
    return PairStats(i=p.j, j=p.i, n_lakes=p.n_lakes, wins=p.losses, losses=p.wins, ties=p.ties,
                     win_rate=1.0 - p.win_rate, mean_diff=-p.mean_diff, ci_low=-p.ci_high, ci_high=-p.ci_low,
                     p_value=p.p_value, significant=p.significant)
