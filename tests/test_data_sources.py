"""Real-data loaders: directory of Kaayko CSVs, CSV, parquet, globs, streaming, and every error."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kaayko_exp.data import iter_table_batches, read_table, schema, validate_frame
from kaayko_exp.errors import DataError

SAMPLE = Path(__file__).parent / "data" / "kaayko_sample"
ONE_FILE = SAMPLE / "Lake_Mead" / "2019-04.csv"


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    return read_table(SAMPLE)


def _raw(n: int = 50) -> pd.DataFrame:
    return pd.read_csv(ONE_FILE, nrows=n)


def _write(tmp_path: Path, df: pd.DataFrame, name: str = "bad.csv") -> Path:
    path = tmp_path / name
    df.to_csv(path, index=False)
    return path


def test_directory_of_kaayko_csvs(table):
    assert len(table) == 10_848 and list(table.columns) == list(schema.COLUMNS)
    assert [str(t) for t in table.dtypes] == [schema.DTYPES[c] for c in schema.COLUMNS]
    assert table["lake"].nunique() == 5
    key = table[["lake", "datetime"]].astype({"lake": str})
    assert key.equals(key.sort_values(["lake", "datetime"]).reset_index(drop=True))
    assert table.loc[0, "datetime"] == pd.Timestamp("2019-04-01 00:00") and table.loc[0, "lake"] == "Lake Mead"


def test_parquet_csv_and_glob_load_the_same_rows(tmp_path, table):
    part = table.iloc[:3000]
    pq = tmp_path / "part.parquet"
    part.to_parquet(pq)
    pd.testing.assert_frame_equal(read_table(pq), part)
    csv = _write(tmp_path, part.assign(datetime=part["datetime"].dt.strftime("%Y-%m-%d %H:%M")), "part.csv")
    pd.testing.assert_frame_equal(read_table(csv), part, check_categorical=False)
    (tmp_path / "more").mkdir()
    table.iloc[3000:4000].to_parquet(tmp_path / "more" / "b.parquet")
    table.iloc[:3000].to_parquet(tmp_path / "more" / "a.parquet")
    globbed = read_table(str(tmp_path / "more" / "*.parquet"))
    assert len(globbed) == 4000


def test_iter_table_batches_streams_in_bounded_batches(tmp_path, table):
    pq = tmp_path / "t.parquet"
    table.drop(columns=["paddle_score", "skill_level"]).to_parquet(pq)
    sizes = [len(b) for b in iter_table_batches(pq, 2500)]
    assert max(sizes) <= 2500 and sum(sizes) == len(table)
    batches = list(iter_table_batches(SAMPLE / "Windermere", 500))
    assert max(len(b) for b in batches) <= 500 and sum(len(b) for b in batches) == 2208
    assert all(str(b["humidity"].dtype) == "int8" for b in batches)


def test_prediction_inputs_need_no_target_and_no_unused_columns():
    # which columns a model needs (and which are derived) is the serving policy's job (test_inputs.py)
    raw = _raw()[["lake", "datetime", "temp_c", "humidity"]]
    out = validate_frame(raw, "request", require_target=False)
    assert list(out.columns) == ["lake", "datetime", "temp_c", "humidity"] and str(out["humidity"].dtype) == "int8"
    with pytest.raises(DataError, match="missing column.*paddle_score"):
        validate_frame(raw, "request", require_target=True)


def _error(tmp_path, df_or_path) -> str:
    path = df_or_path if isinstance(df_or_path, Path) else _write(tmp_path, df_or_path)
    with pytest.raises(DataError) as info:
        read_table(path)
    text = str(info.value)
    assert str(path.name) in text and "\n" not in text
    return text


def test_missing_and_extra_columns_are_named(tmp_path):
    text = _error(tmp_path, _raw().drop(columns=["cloud", "uv"]).assign(colour="blue"))
    assert "missing column(s): cloud, uv" in text and "unexpected column(s): colour" in text


def test_wrong_dtype_names_column_and_example(tmp_path):
    df = _raw().astype({"wind_kph": object})
    df.loc[7, "wind_kph"] = "calm"
    text = _error(tmp_path, df)
    assert "'wind_kph'" in text and "'calm'" in text and "row 8" in text


def test_fractional_integer_and_unknown_vocabulary(tmp_path):
    df = _raw().astype({"humidity": float})
    df.loc[2, "humidity"] = 45.5
    assert "'humidity'" in _error(tmp_path, df) and "45.5" in _error(tmp_path, df)
    df = _raw()
    df.loc[1, "wind_dir"] = "NORTH"
    assert "'NORTH'" in _error(tmp_path, df)
    df = _raw()
    df.loc[1, "datetime"] = "yesterday"
    assert "'yesterday'" in _error(tmp_path, df)


def test_missing_or_non_numeric_target(tmp_path):
    df = _raw()
    df.loc[3, "paddle_score"] = np.nan
    assert "column 'paddle_score' is null at data row 4 (1 such value)" in _error(tmp_path, df)
    df = _raw().astype({"paddle_score": object})
    df.loc[4, "paddle_score"] = "good"
    text = _error(tmp_path, df)
    assert "'paddle_score' must be a number, got text 'good'" in text


def test_out_of_range_value(tmp_path):
    df = _raw()
    df.loc[0, "temp_c"] = 95.0
    assert "'temp_c'" in _error(tmp_path, df) and "95.0" in _error(tmp_path, df)


def test_empty_file_and_header_only(tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    assert "is empty" in _error(tmp_path, empty)
    header = tmp_path / "header.csv"
    header.write_text(",".join(schema.COLUMNS) + "\n")
    assert "no data rows" in _error(tmp_path, header)


def test_nonexistent_path_empty_dir_bad_suffix_and_glob(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        read_table(tmp_path / "nope")
    (tmp_path / "d").mkdir()
    with pytest.raises(DataError, match="no .csv or .parquet files"):
        read_table(tmp_path / "d")
    txt = tmp_path / "x.txt"
    txt.write_text("a")
    with pytest.raises(DataError, match="neither a .csv nor a .parquet"):
        read_table(txt)
    with pytest.raises(DataError, match="matches no files"):
        read_table(str(tmp_path / "*.parquet"))


def test_truncated_parquet_is_a_data_error(tmp_path, table):
    pq = tmp_path / "t.parquet"
    table.iloc[:100].to_parquet(pq)
    pq.write_bytes(pq.read_bytes()[:200])
    with pytest.raises(DataError, match="cannot be read as PARQUET"):
        read_table(pq)


def test_bad_file_inside_a_directory_is_named(tmp_path):
    root = tmp_path / "lakes"
    shutil.copytree(SAMPLE / "Windermere", root / "Windermere")
    bad = _raw(5).drop(columns=["vis_km"])
    (root / "Lake_Mead").mkdir()
    bad.to_csv(root / "Lake_Mead" / "2019-04.csv", index=False)
    with pytest.raises(DataError, match=r"Lake_Mead/2019-04.csv.*missing column\(s\): vis_km"):
        read_table(root)
