"""Honest win rates: runs compared lake by lake against the true held-out labels.

Only runs evaluated on the same held-out rows are compared. Each run's report records a hash of
the split assignment and of the held-out labels (``RunRecord.test_set``); runs are grouped by that
pair, and inside a group the labels read back from each run's ``predictions/test.parquet`` must
agree row for row. :func:`win_rates` says which groups it formed and why runs were left out.

For every ordered pair of runs (i, j) in a group the unit of analysis is the held-out lake: each
run's MAE on each lake, and d = MAE_i − MAE_j per lake (negative: run i has the lower error).
Training-seed variance is not in these numbers: each run is one training seed, so a difference can
come from the seeds alone; ``--group-by seed`` over several seeds shows the spread over seeds.

* ``win_rate``: share of lakes where run i has the lower MAE; a tie (|d| ≤ ``TIE_TOLERANCE``)
  counts one half and is counted in ``ties``;
* ``hl_diff``: the Hodges–Lehmann difference, the median of the Walsh averages (d_a + d_b) / 2, with
  its distribution-free 95 % interval from the signed-rank statistic (the Walsh averages between the
  test's critical counts). It is the shift the signed-rank test tests, so with distinct non-zero
  differences the interval excludes 0 exactly when the raw p is below alpha;
* ``mean_diff``: the mean of d over lakes with a 95 % interval over lakes, by ``INTERVALS``: Student-t
  (``t``, the default) or the BCa bootstrap (``bca``, ``scipy.stats.bootstrap``); see
  :func:`mean_interval` for why t is the default. One lake with a large error can pull the mean while
  the median shift points the other way: the table shows both and says so in ``note``;
* ``p_value``: the paired Wilcoxon signed-rank test over lakes (``scipy.stats.wilcoxon``, two-sided;
  exact with at most ``EXACT_MAX_LAKES`` lakes and no zero difference, else the normal approximation);
  ``p_adjusted``: adjusted over the k(k−1)/2 pairs of the matrix (``ADJUSTMENTS``: Holm, which keeps
  the family-wise error at alpha, by default; Benjamini–Hochberg, which keeps the false discovery rate
  at alpha); ``significant`` is ``p_adjusted < alpha``. With few lakes no difference can be
  significant (4 lakes: the smallest two-sided p is 0.125) and the table says so.

Prediction files are read only here, only the three columns needed, and only for runs that have a
test set to compare on.
"""

from __future__ import annotations

import hashlib
import math
import warnings
from dataclasses import dataclass, field
from typing import Any, Optional, Sequence

import numpy as np

from kaayko_exp.compare.records import RunRecord

LAKE = "lake"
LABEL = "paddle_score"
PREDICTION = "prediction"
COLUMNS = (LAKE, LABEL, PREDICTION)
TIE_TOLERANCE = 1e-12
DEFAULT_ALPHA = 0.05
DEFAULT_MAX_RUNS = 30  # runs in one matrix: pairs grow as the square
LEVEL = 0.95
EXACT_MAX_LAKES = 50  # the signed-rank test's exact null distribution up to this many lakes (as scipy's "auto")
#: p-value adjustments over the pairs of one matrix: name -> what it controls
ADJUSTMENTS = {"holm": "Holm (family-wise error)", "bh": "Benjamini–Hochberg (false discovery rate)"}
DEFAULT_ADJUST = "holm"
#: intervals of a pair's mean difference over lakes: name -> its label in tables (``interval_note`` says more)
INTERVALS = {"t": "t", "bca": "BCa"}
DEFAULT_INTERVAL = "t"
BOOTSTRAP_RESAMPLES = 9999
BOOTSTRAP_SEED = 0  # a fixed seed: the same runs give the same BCa intervals
_BOOTSTRAP_PAIRS = 16  # pairs per scipy call: bounded memory (pairs × resamples × lakes floats)
#: why ``t`` is the default (measured by the script it names)
INTERVAL_MEASURED = ("between equally good runs on 20 lakes, 95 % BCa intervals of the mean exclude 0 for "
                     "7.6–11.4 % of pairs and Student-t ones for 3.9–5.3 % (nominal 5 %; "
                     "python bench/bench_compare_intervals.py)")
UNIT_NOTE = ("Unit: the held-out lake (each run's MAE per lake; one lake counts as much as another). Training-seed "
             "variance is not included: each run is one seed, so a difference can come from the seeds alone. Run "
             "several seeds and use --group-by seed: the table's mean ± std over seeds shows that spread (with "
             "split=lakes the seed also draws the held-out lakes, so the spread covers the split too).")


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
    hl_diff: float  # Hodges–Lehmann: median of the Walsh averages of MAE_i − MAE_j
    hl_ci_low: float  # signed-rank (distribution-free) 95 % interval of hl_diff; ±inf when too few lakes
    hl_ci_high: float
    mean_diff: float  # mean over lakes of MAE_i − MAE_j
    mean_ci_low: float  # 95 % interval over lakes by the group's ``interval`` (NaN with one lake)
    mean_ci_high: float
    p_value: float  # Wilcoxon signed-rank, two-sided, raw
    p_adjusted: float  # adjusted over the pairs of the matrix
    significant: bool  # p_adjusted < alpha
    note: str = ""  # why the interval and the decision seem to disagree, when they do

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values (an unbounded or missing interval end is None)."""
        return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in self.__dict__.items()}


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
    adjust: str = DEFAULT_ADJUST
    interval: str = DEFAULT_INTERVAL  # the mean difference's interval: one of ``INTERVALS``
    records: list[RunRecord] = field(default_factory=list)  # the runs behind ``runs``, same order

    @property
    def name(self) -> str:
        return f"split {self.split_sha256[:8]}…, labels {self.labels_sha256[:8]}…"

    @property
    def n_pairs(self) -> int:
        return len(self.runs) * (len(self.runs) - 1) // 2

    def method_note(self) -> str:
        """One sentence: the test, the adjustment over the matrix and what "significant" means."""
        return (f"Significant: paired Wilcoxon signed-rank test over lakes, p adjusted by {ADJUSTMENTS[self.adjust]} "
                f"over the {self.n_pairs} pair(s) of this matrix, adjusted p < {self.alpha:g}.")

    def interval_note(self) -> str:
        """One sentence: how the mean difference's 95 % interval is computed."""
        return interval_note(self.interval)

    def win_rate_matrix(self) -> np.ndarray:
        """``m[i, j]``: share of lakes where run i has the lower MAE than run j (NaN on the diagonal)."""
        k = len(self.runs)
        m = np.full((k, k), np.nan)
        for (i, j), p in self.pairs.items():
            m[i, j] = p.win_rate
        return m

    def significance_matrix(self) -> np.ndarray:
        """``s[i, j]``: the adjusted test finds runs i and j different (False on the diagonal)."""
        k = len(self.runs)
        s = np.zeros((k, k), dtype=bool)
        for (i, j), p in self.pairs.items():
            s[i, j] = p.significant
        return s

    def mean_lake_mae(self) -> np.ndarray:
        """Each run's MAE averaged over lakes (every lake weighs the same)."""
        return self.lake_mae.mean(axis=0)

    def to_dict(self) -> dict[str, Any]:
        """The group as JSON values: runs, lakes, per-lake MAE, and every ordered pair."""
        return {"split_sha256": self.split_sha256, "labels_sha256": self.labels_sha256, "runs": list(self.runs),
                "n_rows": self.n_rows, "lakes": list(self.lakes), "lake_rows": [int(x) for x in self.lake_rows],
                "lake_mae": [[float(v) for v in row] for row in self.lake_mae],
                "alpha": self.alpha, "adjust": self.adjust, "interval": self.interval,
                "interval_note": self.interval_note(), "n_pairs": self.n_pairs,
                "pairs": [p.to_dict() for (i, j), p in sorted(self.pairs.items())]}


@dataclass
class WinRates:
    """What :func:`win_rates` found: the comparable groups, the runs left out and a sentence for each."""

    groups: list[TestSetGroup] = field(default_factory=list)
    left_out: list[tuple[str, str]] = field(default_factory=list)  # (run shown, reason)
    notes: list[str] = field(default_factory=list)  # one line per group formed and per run left out

    def to_dict(self) -> dict[str, Any]:
        return {"unit": "held-out lake", "unit_note": UNIT_NOTE, "level": LEVEL,
                "groups": [g.to_dict() for g in self.groups],
                "left_out": [{"run": r, "reason": why} for r, why in self.left_out], "notes": list(self.notes)}


# ------------------------------------------------------------------------------------------- statistics
def pair_differences(lake_mae: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Run indexes ``i < j`` of every unordered pair and the per-lake differences ``MAE_i − MAE_j`` (pairs × lakes),
    with differences within ``TIE_TOLERANCE`` set to exactly 0."""
    mae = np.asarray(lake_mae, dtype=np.float64)
    if mae.ndim != 2 or mae.shape[0] == 0:
        raise ValueError(f"per-lake MAE must be lakes × runs and non-empty, got shape {mae.shape}")
    i, j = np.triu_indices(mae.shape[1], 1)
    d = (mae[:, i] - mae[:, j]).T
    d[np.abs(d) <= TIE_TOLERANCE] = 0.0
    return i, j, d


def _exact(d: np.ndarray) -> np.ndarray:
    """Per row: the exact signed-rank null is used (no zero difference, at most ``EXACT_MAX_LAKES`` lakes; as
    scipy's "auto" does)."""
    return np.all(d != 0, axis=-1) & (d.shape[-1] <= EXACT_MAX_LAKES)


def signed_rank_p(diffs: np.ndarray) -> np.ndarray:
    """Two-sided Wilcoxon signed-rank p-values of each row of per-lake differences (1.0 for an all-zero row)."""
    from scipy.stats import wilcoxon

    d = np.atleast_2d(np.asarray(diffs, dtype=np.float64))
    p = np.ones(d.shape[0])
    nonzero = np.any(d != 0, axis=-1)
    exact = _exact(d)
    for mask, method in ((nonzero & exact, "exact"), (nonzero & ~exact, "asymptotic")):
        if mask.any():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # few non-zero lakes under the approximation
                res = wilcoxon(d[mask], zero_method="wilcox", alternative="two-sided", method=method, axis=-1)
            p[mask] = np.nan_to_num(np.asarray(res.pvalue, dtype=np.float64), nan=1.0)
    return p


def wilcoxon_p(diffs: Sequence[float]) -> float:
    """Two-sided paired Wilcoxon signed-rank p-value of one vector of per-lake differences."""
    return float(signed_rank_p(np.asarray(diffs, dtype=np.float64)[None, :])[0])


def adjust_p(p: Sequence[float], method: str = DEFAULT_ADJUST) -> np.ndarray:
    """``p`` adjusted for the family it forms: Holm's step-down (family-wise error) or Benjamini–Hochberg
    (false discovery rate, ``scipy.stats.false_discovery_control``)."""
    p = np.asarray(p, dtype=np.float64)
    if method not in ADJUSTMENTS:
        raise ValueError(f"unknown p-value adjustment {method!r}; one of {', '.join(ADJUSTMENTS)}")
    if p.size == 0:
        return p.copy()
    if method == "bh":
        from scipy.stats import false_discovery_control

        return np.asarray(false_discovery_control(p, method="bh"), dtype=np.float64)
    order = np.argsort(p, kind="stable")
    m = p.size
    stepped = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * p[order]))
    out = np.empty_like(p)
    out[order] = stepped
    return out


def significant_pairs(lake_mae: np.ndarray, *, alpha: float = DEFAULT_ALPHA, adjust: str = DEFAULT_ADJUST
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For every unordered pair of runs (the order of :func:`pair_differences`): raw p, adjusted p, significant."""
    _, _, d = pair_differences(lake_mae)
    raw = signed_rank_p(d)
    adjusted = adjust_p(raw, adjust)
    return raw, adjusted, adjusted < alpha


def _signed_rank_cut(n: int, alpha: float) -> int:
    """How many Walsh averages the two-sided signed-rank test at ``alpha`` cuts from each end: the largest count
    ``c`` with 2·P(T ≤ c − 1) < alpha under the null (0: no data can reject, the interval is unbounded)."""
    m = n * (n + 1) // 2
    if n <= EXACT_MAX_LAKES:
        counts = np.zeros(m + 1)
        counts[0] = 1.0
        for r in range(1, n + 1):  # the exact null: each rank in T with probability 1/2
            counts[r:] = counts[r:] + counts[:-r].copy()
        cdf = np.cumsum(counts) / counts.sum()
        return int(np.sum(2.0 * cdf < alpha))
    from scipy.stats import norm

    sd = math.sqrt(n * (n + 1) * (2 * n + 1) / 24.0)
    return max(0, int(math.ceil(m / 2.0 - norm.ppf(1.0 - alpha / 2.0) * sd)))


def hodges_lehmann(diffs: np.ndarray, *, level: float = LEVEL) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per row of per-lake differences: the Hodges–Lehmann shift (median of the Walsh averages) and the
    distribution-free interval that inverts the signed-rank test at 1 − ``level``."""
    d = np.atleast_2d(np.asarray(diffs, dtype=np.float64))
    n = d.shape[1]
    a, b = np.triu_indices(n)  # a <= b: every Walsh average, each lake with itself too
    cut = _signed_rank_cut(n, 1.0 - level)
    est, low, high = (np.empty(d.shape[0]) for _ in range(3))
    for start in range(0, d.shape[0], 64):  # bounded memory with many lakes
        walsh = np.sort((d[start:start + 64, a] + d[start:start + 64, b]) / 2.0, axis=1)
        est[start:start + 64] = np.median(walsh, axis=1)
        low[start:start + 64] = walsh[:, cut - 1] if cut > 0 else -np.inf
        high[start:start + 64] = walsh[:, walsh.shape[1] - cut] if cut > 0 else np.inf
    return est, low, high


def interval_note(method: str) -> str:
    """One sentence naming the mean difference's interval ``method`` (one of ``INTERVALS``)."""
    if method == "bca":
        return (f"Mean Δ: BCa bootstrap 95 % interval over lakes (scipy.stats.bootstrap, {BOOTSTRAP_RESAMPLES} "
                f"resamples, seed {BOOTSTRAP_SEED}); less reliable than Student-t with few lakes: "
                f"{INTERVAL_MEASURED}.")
    return "Mean Δ: Student-t 95 % interval over lakes."


def mean_interval(diffs: np.ndarray, *, level: float = LEVEL, method: str = DEFAULT_INTERVAL
                  ) -> tuple[np.ndarray, np.ndarray]:
    """The 95 % interval of the mean of each row of per-lake differences (lakes as the sample), by ``method``:
    ``t`` (Student-t) or ``bca`` (:func:`bootstrap_interval`). A row whose lakes all agree gets the point
    interval; NaN with one lake.

    ``t`` is the default, by measurement: ``INTERVAL_MEASURED`` (BCa intervals exclude 0 about twice as often as
    their nominal 5 % between equally good runs on 20 lakes)."""
    if method not in INTERVALS:
        raise ValueError(f"unknown interval {method!r}; one of {', '.join(INTERVALS)}")
    if method == "bca":
        return bootstrap_interval(diffs, level=level)
    from scipy.stats import t as student

    d = np.atleast_2d(np.asarray(diffs, dtype=np.float64))
    n = d.shape[1]
    mean = d.mean(axis=1)
    if n < 2:
        return np.full_like(mean, np.nan), np.full_like(mean, np.nan)
    half = student.ppf(0.5 + level / 2.0, n - 1) * d.std(axis=1, ddof=1) / math.sqrt(n)
    half[np.ptp(d, axis=1) <= TIE_TOLERANCE] = 0.0
    return mean - half, mean + half


def bootstrap_interval(diffs: np.ndarray, *, level: float = LEVEL, kind: str = "BCa",
                       n_resamples: int = BOOTSTRAP_RESAMPLES, seed: int = BOOTSTRAP_SEED
                       ) -> tuple[np.ndarray, np.ndarray]:
    """Bootstrap interval (``scipy.stats.bootstrap``, ``kind``: BCa or percentile) of the mean of each row of
    per-lake differences, resampling lakes.

    Rows go to scipy vectorised, a few at a time, each call seeded afresh with ``seed``: every row is resampled
    with the same lake indices, so a row's interval is what ``scipy.stats.bootstrap`` gives for that row alone
    with the same seed and resamples, whatever else is in the matrix. A row whose lakes all agree gets the point
    interval (every resample has that mean); one lake gives NaN; an interval scipy cannot form (BCa's
    bias correction undefined) is NaN, without warnings."""
    from scipy.stats import bootstrap

    d = np.atleast_2d(np.asarray(diffs, dtype=np.float64))
    mean = d.mean(axis=1)
    low, high = np.full_like(mean, np.nan), np.full_like(mean, np.nan)
    if d.shape[1] < 2:
        return low, high
    flat = np.ptp(d, axis=1) <= TIE_TOLERANCE
    low[flat] = high[flat] = mean[flat]
    rows = np.flatnonzero(~flat)
    for start in range(0, rows.size, _BOOTSTRAP_PAIRS):
        part = rows[start:start + _BOOTSTRAP_PAIRS]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a degenerate resampling distribution: NaN, named in the pair's note
            ci = bootstrap((d[part],), np.mean, axis=-1, vectorized=True, n_resamples=n_resamples,
                           confidence_level=level, method=kind, **{_seed_keyword(): np.random.default_rng(seed)}
                           ).confidence_interval
        low[part], high[part] = ci.low, ci.high
    return low, high


def _seed_keyword() -> str:
    """``scipy.stats.bootstrap`` takes ``rng`` from scipy 1.15, ``random_state`` before."""
    import inspect

    from scipy.stats import bootstrap

    return "rng" if "rng" in inspect.signature(bootstrap).parameters else "random_state"


def _note(p: PairStats, alpha: float, adjust: str, n_pairs: int) -> str:
    """Why the pair's intervals and its decision seem to disagree ('' when they do not)."""
    hl_excludes = p.hl_ci_low > 0 or p.hl_ci_high < 0
    notes = []
    if hl_excludes and not p.significant and p.p_value < alpha:
        notes.append(f"the median interval excludes 0 (raw p {p.p_value:.3g}) but {ADJUSTMENTS[adjust].split(' (')[0]} over "
                     f"{n_pairs} pairs leaves it not significant")
    elif hl_excludes != (p.p_value < alpha):
        notes.append("ties or zero differences between lakes: the test's p and the interval's order statistics are "
                     "not exactly dual here")
    mean_excludes = p.mean_ci_low > 0 or p.mean_ci_high < 0
    if p.n_lakes > 1 and (math.isnan(p.mean_ci_low) or math.isnan(p.mean_ci_high)):
        notes.append("no mean interval: the bootstrap's resampled means are too lumpy for BCa (few distinct "
                     "differences); --interval t gives one")
    elif p.significant and not mean_excludes:
        notes.append("the mean interval includes 0: a few lakes pull the mean, the test and the median speak of the "
                     "typical lake")
    elif np.sign(p.mean_diff) * np.sign(p.hl_diff) < 0:
        notes.append("mean and median point opposite ways: a few lakes pull the mean")
    return "; ".join(notes)


def pairwise(lake_mae: np.ndarray, runs: Sequence[str], *, alpha: float = DEFAULT_ALPHA,
             adjust: str = DEFAULT_ADJUST, interval: str = DEFAULT_INTERVAL) -> dict[tuple[int, int], PairStats]:
    """Every ordered pair of the runs (columns of ``lake_mae``, lakes × runs): win rate, Hodges–Lehmann shift with
    its signed-rank interval, mean with its ``interval`` interval, raw and adjusted Wilcoxon p, the decision and a
    note. Pair (j, i) mirrors pair (i, j), i < j (its interval is the negated one)."""
    i_idx, j_idx, d = pair_differences(lake_mae)
    raw, adjusted, significant = significant_pairs(lake_mae, alpha=alpha, adjust=adjust)
    hl, hl_low, hl_high = hodges_lehmann(d)
    mean_low, mean_high = mean_interval(d, method=interval)
    n_pairs = len(i_idx)
    out: dict[tuple[int, int], PairStats] = {}
    for k, (i, j) in enumerate(zip(i_idx.tolist(), j_idx.tolist())):
        row = d[k]
        wins, losses = int(np.sum(row < 0)), int(np.sum(row > 0))
        ties = int(row.size - wins - losses)
        p = PairStats(i=runs[i], j=runs[j], n_lakes=int(row.size), wins=wins, losses=losses, ties=ties,
                      win_rate=(wins + 0.5 * ties) / row.size, hl_diff=float(hl[k]), hl_ci_low=float(hl_low[k]),
                      hl_ci_high=float(hl_high[k]), mean_diff=float(row.mean()), mean_ci_low=float(mean_low[k]),
                      mean_ci_high=float(mean_high[k]), p_value=float(raw[k]), p_adjusted=float(adjusted[k]),
                      significant=bool(significant[k]))
        p.note = _note(p, alpha, adjust, n_pairs)
        out[(i, j)] = p
        out[(j, i)] = _mirror(p)
    return out


def pair_stats(mae_i: Sequence[float], mae_j: Sequence[float], *, i: str = "i", j: str = "j",
               alpha: float = DEFAULT_ALPHA, interval: str = DEFAULT_INTERVAL) -> PairStats:
    """Run i against run j alone (a family of one pair: nothing to adjust)."""
    a = np.asarray(mae_i, dtype=np.float64)
    b = np.asarray(mae_j, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1 or a.size == 0:
        raise ValueError(f"per-lake MAE vectors must be non-empty and of one length, got {a.shape} and {b.shape}")
    return pairwise(np.column_stack([a, b]), [i, j], alpha=alpha, interval=interval)[(0, 1)]


# ------------------------------------------------------------------------------------------- grouping
def _short(h: str) -> str:
    return f"{h[:8]}…"


def _read_predictions(record: RunRecord) -> tuple[Optional[Any], str]:
    """The lake, label and prediction columns of a run's held-out predictions, or None and the reason."""
    import pandas as pd

    path = record.predictions_path
    if not path.exists():
        return None, f"it has no {path.relative_to(record.path)} (the evaluate stage did not finish)"
    try:
        import pyarrow.dataset as ds

        names = set(ds.dataset(path, format="parquet").schema.names)  # a file, or partitioned (backend=dask)
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


def win_rates(records: Sequence[RunRecord], *, alpha: float = DEFAULT_ALPHA, adjust: str = DEFAULT_ADJUST,
              interval: str = DEFAULT_INTERVAL, max_runs: int = DEFAULT_MAX_RUNS) -> WinRates:
    """Group runs by test set and compute the pairwise per-lake statistics inside each group of ≥ 2 runs.

    Runs that are not ``completed``, have no ``test_set`` block, no readable predictions, or labels
    that differ from the rest of their group are left out with the reason (``WinRates.left_out``);
    ``WinRates.notes`` has one sentence per group formed and per run left out. A group of more than
    ``max_runs`` runs keeps the ``max_runs`` with the lowest mean per-lake MAE (the others are named).
    P-values are adjusted per group (``adjust``: one of ``ADJUSTMENTS``) over its pairs; the mean difference's
    interval is ``interval`` (one of ``INTERVALS``).
    Prediction files are read one at a time and reduced to per-lake MAE (memory stays small).
    """
    if interval not in INTERVALS:
        raise ValueError(f"unknown interval {interval!r}; one of {', '.join(INTERVALS)}")
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
        group = _build_group(key, members, out, alpha=alpha, adjust=adjust, interval=interval,
                             max_runs=max_runs)
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


def _build_group(key: tuple[str, str], members: list[RunRecord], out: WinRates, *,
                 alpha: float, adjust: str, interval: str, max_runs: int) -> Optional[TestSetGroup]:
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
    pairs = pairwise(mae, runs, alpha=alpha, adjust=adjust, interval=interval)
    return TestSetGroup(split_sha256=key[0], labels_sha256=key[1], runs=runs,
                        lakes=kept[0].lakes, lake_mae=mae, lake_rows=np.asarray(kept[0].lake_rows), pairs=pairs,
                        n_rows=kept[0].n_rows, alpha=alpha, adjust=adjust, interval=interval,
                        records=[s.record for s in kept])


def _mirror(p: PairStats) -> PairStats:
    """Run j against run i, from run i against run j."""
    return PairStats(i=p.j, j=p.i, n_lakes=p.n_lakes, wins=p.losses, losses=p.wins, ties=p.ties,
                     win_rate=1.0 - p.win_rate, hl_diff=-p.hl_diff, hl_ci_low=-p.hl_ci_high, hl_ci_high=-p.hl_ci_low,
                     mean_diff=-p.mean_diff, mean_ci_low=-p.mean_ci_high, mean_ci_high=-p.mean_ci_low,
                     p_value=p.p_value, p_adjusted=p.p_adjusted, significant=p.significant, note=p.note)
