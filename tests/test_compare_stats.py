"""Honest win rates on hand-made runs with a known answer (kaayko_exp.compare.stats)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import pandas as pd
import pytest

from kaayko_exp.compare.records import RunRecord
from kaayko_exp.compare.stats import (adjust_p, hodges_lehmann, mean_interval, pair_differences, pair_stats,
                                      pairwise, significant_pairs, wilcoxon_p, win_rates)

LAKES = ("Alpha", "Bravo", "Charlie", "Delta")
SPLIT = "5" * 64
LABELS = "a" * 64


def make_run(root: Path, name: str, lake_mae: Sequence[float], *, lakes: Sequence[str] = LAKES,
             rows_per_lake: int = 2, labels: Optional[Sequence[float]] = None,
             test_set: Optional[dict] = "default", status: str = "completed", write: bool = True,
             **fields) -> RunRecord:
    """A run directory whose predictions/test.parquet gives exactly ``lake_mae[k]`` on lake k.

    Each lake has ``rows_per_lake`` rows; errors alternate in sign with the same size, so the MAE of
    the lake is the size. ``labels`` (one per row) default to 3.0, 2.5, 3.0, 2.5, …
    """
    path = root / name
    (path / "predictions").mkdir(parents=True)
    lake_col = [lake for lake in lakes for _ in range(rows_per_lake)]
    n = len(lake_col)
    y = np.asarray(labels if labels is not None else [3.0 if k % 2 == 0 else 2.5 for k in range(n)], dtype=float)
    size = np.repeat(np.asarray(lake_mae, dtype=float), rows_per_lake)
    sign = np.where(np.arange(n) % 2 == 0, 1.0, -1.0)
    if write:
        pd.DataFrame({"lake": lake_col, "wind_speed_kph": np.arange(n, dtype=float), "paddle_score": y,
                      "prediction": y + sign * size}).to_parquet(path / "predictions" / "test.parquet", index=False)
    if test_set == "default":
        test_set = {"n": n, "split_sha256": SPLIT, "labels_sha256": LABELS, "lakes": len(lakes)}
    return RunRecord(path=path, shown=f"outputs/{name}", status=status, test_set=test_set, **fields)


# ---------------------------------------------------------------------------------------- known answers
def test_run_better_on_three_of_four_lakes_has_win_rate_three_quarters(tmp_path):
    a = make_run(tmp_path, "a", [0.1, 0.2, 0.3, 0.8])
    b = make_run(tmp_path, "b", [0.2, 0.4, 0.6, 0.4])
    result = win_rates([a, b])
    assert len(result.groups) == 1 and result.left_out == []
    g = result.groups[0]
    assert g.runs == ["outputs/a", "outputs/b"]
    assert g.lakes == list(sorted(LAKES))
    np.testing.assert_allclose(g.lake_mae[:, 0], [0.1, 0.2, 0.3, 0.8])
    ab, ba = g.pairs[(0, 1)], g.pairs[(1, 0)]
    assert (ab.wins, ab.losses, ab.ties, ab.n_lakes) == (3, 1, 0, 4)
    assert ab.win_rate == 0.75 and ba.win_rate == 0.25
    assert ab.mean_diff == pytest.approx(-0.05) and ba.mean_diff == pytest.approx(0.05)
    # |d| = 0.1, 0.2, 0.3, 0.4 ranks 1..4, W+ = 4 (the one lake b wins). Exact null of n = 4: 16 equally
    # likely sign patterns, 7 with W+ <= 4 ({}, {1}, {2}, {3}, {4}, {1,2}, {1,3}); two-sided p = 2 * 7/16.
    assert ab.p_value == pytest.approx(14 / 16) and not ab.significant
    m = g.win_rate_matrix()
    assert m[0, 1] == 0.75 and m[1, 0] == 0.25 and np.isnan(m[0, 0])
    assert ab.mean_ci_low <= ab.mean_diff <= ab.mean_ci_high
    # d = -0.1, -0.2, -0.3, +0.4; the 10 Walsh averages sorted: -.3 -.25 -.2 -.2 -.15 -.1 .05 .1 .15 .4
    assert ab.hl_diff == pytest.approx(-0.125) and ba.hl_diff == pytest.approx(0.125)
    # with 4 lakes no data can reject at 0.05: the interval that inverts the test is unbounded
    assert (ab.hl_ci_low, ab.hl_ci_high) == (-np.inf, np.inf)
    assert g.n_rows == 8 and list(g.lake_rows) == [2, 2, 2, 2]


def test_a_tie_counts_one_half_and_is_reported():
    p = pair_stats([0.1, 0.2, 0.3, 0.4], [0.2, 0.2, 0.4, 0.5])
    assert (p.wins, p.losses, p.ties) == (3, 0, 1)
    assert p.win_rate == 0.875


def test_every_lake_better_by_exactly_a_tenth_gives_a_degenerate_interval(tmp_path):
    a = make_run(tmp_path, "a", [0.2, 0.3, 0.4, 0.5])
    b = make_run(tmp_path, "b", [0.1, 0.2, 0.3, 0.4])
    p = win_rates([a, b]).groups[0].pairs[(0, 1)]
    assert p.mean_diff == pytest.approx(0.1)
    assert p.mean_ci_low == pytest.approx(0.1) and p.mean_ci_high == pytest.approx(0.1)
    assert p.hl_diff == pytest.approx(0.1)
    assert p.win_rate == 0.0
    # four lakes, all one sign: the smallest two-sided exact p is 2 / 2**4; not significant at 0.05
    assert p.p_value == pytest.approx(0.125) and not p.significant


def test_wilcoxon_exact_p_values_of_hand_cases():
    # all differences one sign, distinct sizes: two-sided exact p = 2 / 2**n
    assert wilcoxon_p([0.1, 0.2, 0.3, 0.4, 0.5]) == pytest.approx(2 / 32)
    assert wilcoxon_p([-0.1, -0.2, -0.3, -0.4, -0.5, -0.6]) == pytest.approx(2 / 64)
    # ranks 1..4, W- = 2: sign patterns with W <= 2 are {}, {1}, {2}: p = 2 * 3/16
    assert wilcoxon_p([0.1, -0.2, 0.3, 0.4]) == pytest.approx(6 / 16)
    assert wilcoxon_p([0.0, 0.0, 0.0]) == 1.0


def test_six_lakes_all_won_is_significant_five_is_not():
    six = pair_stats([0.1] * 6, [0.2, 0.3, 0.4, 0.5, 0.6, 0.7])
    five = pair_stats([0.1] * 5, [0.2, 0.3, 0.4, 0.5, 0.6])
    assert six.significant and six.p_value == pytest.approx(2 / 64)
    assert not five.significant and five.p_value == pytest.approx(2 / 32)


def test_mean_interval_is_the_student_t_interval_over_lakes():
    from scipy.stats import t

    low, high = mean_interval(np.array([[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]]))
    half = t.ppf(0.975, 5) * np.std([1, 2, 3, 4, 5, 6], ddof=1) / np.sqrt(6)
    assert (low[0], high[0]) == pytest.approx((3.5 - half, 3.5 + half))


def test_holm_and_benjamini_hochberg_adjustments():
    # Holm: sorted 0.005, 0.01, 0.03, 0.04 times 4, 3, 2, 1 = 0.02, 0.03, 0.06, 0.04, then running maximum
    np.testing.assert_allclose(adjust_p([0.01, 0.04, 0.03, 0.005], "holm"), [0.03, 0.06, 0.06, 0.02])
    # BH: p(k) * m / k = 0.02, 0.02, 0.04, 0.04, then running minimum from the top
    np.testing.assert_allclose(adjust_p([0.01, 0.04, 0.03, 0.005], "bh"), [0.02, 0.04, 0.04, 0.02])
    with pytest.raises(ValueError, match="unknown p-value adjustment"):
        adjust_p([0.1], "bonferonni")


def test_the_median_interval_excludes_zero_exactly_when_the_raw_test_rejects():
    """The interval beside the test speaks of the same thing: it inverts the signed-rank test."""
    from scipy.stats import wilcoxon

    rng = np.random.default_rng(11)
    checked = 0
    for n in [*range(6, 41), 60, 90]:  # exact null up to 50 lakes, the normal approximation above
        for shift in (0.0, 0.3, 0.6, 1.0):
            d = rng.standard_t(3, size=n) + shift
            p = wilcoxon(d).pvalue
            _, low, high = hodges_lehmann(d[None, :])
            assert (p < 0.05) == (low[0] > 0 or high[0] < 0), (n, shift, p, low, high)
            checked += p < 0.05
    assert checked > 30  # both outcomes were exercised


def _equal_runs(rng: np.random.Generator, lakes: int = 20, runs: int = 10) -> np.ndarray:
    """Per-lake MAE of equally good runs: a lake difficulty shared by all runs, times run-by-lake noise."""
    return rng.gamma(2.0, 0.02, size=(lakes, 1)) * np.exp(rng.normal(0.0, 0.15, size=(lakes, runs)))


def test_family_wise_error_stays_at_its_level_with_equal_runs():
    """10 equally good runs on 20 lakes: 45 pairs per matrix. Unadjusted, most matrices show a 'significant'
    pair; with Holm, at most about alpha of them do, and the pairs' intervals exclude 0 about 5 % of the time."""
    rng = np.random.default_rng(2024)
    n_matrices, raw_any, holm_any, bh_any = 300, 0, 0, 0
    hl_out = mean_out = pairs = 0
    for _ in range(n_matrices):
        mae = _equal_runs(rng)
        raw, _, sig = significant_pairs(mae, alpha=0.05, adjust="holm")
        raw_any += bool(np.any(raw < 0.05))
        holm_any += bool(np.any(sig))
        bh_any += bool(np.any(significant_pairs(mae, alpha=0.05, adjust="bh")[2]))
        _, _, d = pair_differences(mae)
        _, low, high = hodges_lehmann(d)
        hl_out += int(np.sum((low > 0) | (high < 0)))
        m_low, m_high = mean_interval(d)
        mean_out += int(np.sum((m_low > 0) | (m_high < 0)))
        pairs += d.shape[0]
    assert raw_any / n_matrices > 0.5  # the problem the adjustment solves
    assert holm_any / n_matrices <= 0.05 + 0.025  # 300 matrices: one standard error is about 0.013
    assert bh_any / n_matrices <= 0.05 + 0.025  # all nulls true: the FDR is the FWER
    assert hl_out / pairs <= 0.05 + 0.01
    assert mean_out / pairs <= 0.05 + 0.01


def test_a_lake_that_pulls_the_mean_is_named_beside_a_significant_median():
    """The issue's case: the typical lake favours run a, one lake (0.1435 vs 0.0848) pulls the mean the other way."""
    rng = np.random.default_rng(5)
    b = rng.uniform(0.02, 0.06, size=20)
    a = b - rng.uniform(0.001, 0.004, size=20)
    a[0], b[0] = 0.1435, 0.0848
    p = pair_stats(a, b)
    assert p.significant and p.p_adjusted == p.p_value  # one pair: nothing to adjust
    assert p.hl_diff < 0 and p.hl_ci_high < 0  # the median interval agrees with the test
    assert p.mean_ci_low < 0 < p.mean_ci_high  # the mean's does not ...
    assert "a few lakes pull the mean" in p.note  # ... and the table says why


def test_an_unadjusted_hit_is_explained_when_the_adjustment_removes_it(tmp_path):
    rng = np.random.default_rng(8)
    for _ in range(200):
        mae = _equal_runs(rng, runs=6)
        raw, adjusted, sig = significant_pairs(mae)
        if np.any((raw < 0.05) & ~sig):
            break
    names = [f"r{k}" for k in range(6)]
    from kaayko_exp.compare.stats import pairwise

    pairs = pairwise(mae, names)
    hits = [p for (i, j), p in pairs.items() if i < j and p.p_value < 0.05 and not p.significant]
    assert hits and all("Holm over 15 pairs leaves it not significant" in p.note for p in hits)
    assert all(p.p_adjusted >= p.p_value for p in pairs.values())


# ---------------------------------------------------------------------------------------- grouping
def test_mixed_test_sets_are_not_put_in_one_matrix(tmp_path):
    runs = [make_run(tmp_path, f"r{k}", [0.1 * (k + 1)] * 4) for k in range(3)]
    other = make_run(tmp_path, "other", [0.1] * 4,
                     test_set={"n": 8, "split_sha256": SPLIT, "labels_sha256": "b" * 64, "lakes": 4})
    other_split = make_run(tmp_path, "moved", [0.1] * 4,
                           test_set={"n": 8, "split_sha256": "6" * 64, "labels_sha256": "c" * 64, "lakes": 4})
    result = win_rates(runs + [other, other_split])
    assert [g.runs for g in result.groups] == [["outputs/r0", "outputs/r1", "outputs/r2"]]
    reasons = dict(result.left_out)
    assert set(reasons) == {"outputs/other", "outputs/moved"}
    assert "different labels hash" in reasons["outputs/other"] and "not compared" in reasons["outputs/other"]
    assert "different split and labels hashes" in reasons["outputs/moved"]
    assert result.notes[0].startswith("3 runs share test set split 55555555…, labels aaaaaaaa…")
    assert any(n.startswith("run outputs/other: it has another test set (different labels hash") for n in result.notes)


def test_runs_without_a_usable_test_set_are_left_out_with_the_reason(tmp_path):
    a = make_run(tmp_path, "a", [0.1] * 4)
    b = make_run(tmp_path, "b", [0.2] * 4)
    old = make_run(tmp_path, "old", [0.1] * 4, test_set=None, write=False)
    (old.predictions_path).write_bytes(b"not parquet")  # never read: the run has no test set to check
    failed = make_run(tmp_path, "failed", [0.1] * 4, status="failed")
    missing = make_run(tmp_path, "missing", [0.1] * 4, write=False)
    wrong_n = make_run(tmp_path, "wrong_n", [0.1] * 4)
    wrong_n.test_set = dict(wrong_n.test_set, n=9)
    result = win_rates([a, b, old, failed, missing, wrong_n])
    assert [g.runs for g in result.groups] == [["outputs/a", "outputs/b"]]
    reasons = dict(result.left_out)
    assert "records no test-set hashes" in reasons["outputs/old"]
    assert "status is failed" in reasons["outputs/failed"]
    assert "has no predictions/test.parquet" in reasons["outputs/missing"]
    assert "has 8 rows but report.json says the test set has 9" in reasons["outputs/wrong_n"]


def test_same_labels_hash_but_different_labels_in_the_file_is_caught(tmp_path):
    a = make_run(tmp_path, "a", [0.1] * 4)
    b = make_run(tmp_path, "b", [0.2] * 4)
    c = make_run(tmp_path, "c", [0.3] * 4, labels=[4.0] * 8)
    result = win_rates([a, b, c])
    assert [g.runs for g in result.groups] == [["outputs/a", "outputs/b"]]
    assert "differ from theirs" in dict(result.left_out)["outputs/c"]


def test_a_lone_run_has_nothing_to_be_compared_with(tmp_path):
    result = win_rates([make_run(tmp_path, "a", [0.1] * 4)])
    assert result.groups == []
    assert "nothing to compare it with" in dict(result.left_out)["outputs/a"]


def test_prediction_file_without_the_label_column_is_named(tmp_path):
    a = make_run(tmp_path, "a", [0.1] * 4)
    b = make_run(tmp_path, "b", [0.2] * 4)
    c = make_run(tmp_path, "c", [0.2] * 4)
    pd.read_parquet(c.predictions_path).drop(columns=["paddle_score"]).to_parquet(c.predictions_path)
    result = win_rates([a, b, c])
    assert "lacks the column(s) paddle_score" in dict(result.left_out)["outputs/c"]
    assert result.groups[0].runs == ["outputs/a", "outputs/b"]


def test_a_pair_read_both_ways_agrees_and_matches_the_standalone_statistics(tmp_path):
    a = make_run(tmp_path, "a", [0.1, 0.25, 0.3, 0.7])
    b = make_run(tmp_path, "b", [0.2, 0.4, 0.6, 0.4])
    g = win_rates([a, b]).groups[0]
    ab, ba = g.pairs[(0, 1)], g.pairs[(1, 0)]
    assert (ba.wins, ba.losses, ba.win_rate, ba.p_value) == (ab.losses, ab.wins, 1 - ab.win_rate, ab.p_value)
    assert (ba.mean_ci_low, ba.mean_ci_high) == pytest.approx((-ab.mean_ci_high, -ab.mean_ci_low))
    assert ba.hl_diff == -ab.hl_diff
    alone = pair_stats([0.1, 0.25, 0.3, 0.7], [0.2, 0.4, 0.6, 0.4])
    assert (alone.mean_ci_low, alone.mean_ci_high) == pytest.approx((ab.mean_ci_low, ab.mean_ci_high))


def test_a_large_group_keeps_the_best_runs_and_names_the_others(tmp_path):
    runs = [make_run(tmp_path, f"r{k}", [0.1 * (k + 1)] * 4) for k in range(5)]
    result = win_rates(list(reversed(runs)), max_runs=3)
    assert result.groups[0].runs == ["outputs/r2", "outputs/r1", "outputs/r0"]  # input order, best three
    reasons = dict(result.left_out)
    assert set(reasons) == {"outputs/r3", "outputs/r4"}
    assert "the 3 with the lowest mean per-lake MAE" in reasons["outputs/r4"]


# ---------------------------------------------------------------------------------------- --interval bca
def _scipy_bca(d: np.ndarray) -> tuple[float, float]:
    """The BCa interval of the mean of one row, straight from scipy (same resamples and seed as the tool)."""
    import inspect

    from scipy.stats import bootstrap

    from kaayko_exp.compare.stats import BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED

    seed_kw = "rng" if "rng" in inspect.signature(bootstrap).parameters else "random_state"
    ci = bootstrap((d,), np.mean, n_resamples=BOOTSTRAP_RESAMPLES, method="BCa", confidence_level=0.95,
                   **{seed_kw: np.random.default_rng(BOOTSTRAP_SEED)}).confidence_interval
    return float(ci.low), float(ci.high)


def test_bca_intervals_are_scipy_bootstrap_per_pair_whatever_else_is_in_the_matrix():
    """More pairs than one scipy call takes: each pair's interval is scipy's BCa for that pair alone."""
    rng = np.random.default_rng(5)
    mae = rng.gamma(2.0, 0.02, size=(12, 1)) * np.exp(rng.normal(0.0, 0.3, size=(12, 8)))  # 28 pairs
    i_idx, j_idx, d = pair_differences(mae)
    low, high = mean_interval(d, method="bca")
    t_low, t_high = mean_interval(d, method="t")
    for k in (0, 17, 27):
        assert (low[k], high[k]) == pytest.approx(_scipy_bca(d[k]), rel=1e-9, abs=1e-15)
    assert not np.allclose(low, t_low)  # a different interval, not the t one renamed
    pairs = pairwise(mae, [f"r{k}" for k in range(8)], interval="bca")
    k = 17
    p = pairs[(int(i_idx[k]), int(j_idx[k]))]
    assert (p.mean_ci_low, p.mean_ci_high) == pytest.approx((low[k], high[k]), rel=1e-12)
    mirrored = pairs[(int(j_idx[k]), int(i_idx[k]))]
    assert (mirrored.mean_ci_low, mirrored.mean_ci_high) == pytest.approx((-high[k], -low[k]), rel=1e-12)
    with pytest.raises(ValueError, match="unknown interval 'bootstrap'; one of t, bca"):
        mean_interval(d, method="bootstrap")


@pytest.mark.parametrize("mae_i, mae_j, expected", [
    ([0.2, 0.3, 0.4, 0.5], [0.1, 0.2, 0.3, 0.4], (0.1, 0.1)),  # every lake differs by the same amount
    ([0.3, 0.3, 0.3], [0.3, 0.3, 0.3], (0.0, 0.0)),  # identical runs
    ([0.3], [0.1], (None, None)),  # one lake: no interval
])
def test_bca_on_degenerate_pairs_neither_crashes_nor_warns(mae_i, mae_j, expected):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        p = pair_stats(mae_i, mae_j, interval="bca")
    got = p.to_dict()["mean_ci_low"], p.to_dict()["mean_ci_high"]
    if expected[0] is None:
        assert got == (None, None)
    else:
        assert got == pytest.approx(expected)


def test_a_bca_interval_scipy_cannot_form_is_named_in_the_note(monkeypatch):
    """Should scipy give no BCa interval for a pair of several lakes, the note says so instead of 'n/a' alone."""
    from kaayko_exp.compare import stats

    monkeypatch.setattr(stats, "bootstrap_interval", lambda d, **kw: (np.full(len(d), np.nan),) * 2)
    p = pair_stats([0.1, 0.2, 0.3, 0.5, 0.4], [0.2, 0.3, 0.4, 0.3, 0.6], interval="bca")
    assert p.to_dict()["mean_ci_low"] is None
    assert "no mean interval" in p.note and "--interval t" in p.note
