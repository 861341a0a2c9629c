"""doudi.frames: frames from typed columns and the arrays behind columns read as pandas reads them."""

import numpy as np
import pandas as pd
import pytest
from pandas.api.extensions import no_default

from doudi.frames import boxed, column_arrays, column_values, frame_of


def _frame() -> pd.DataFrame:
    return pd.DataFrame({
        "real": [1.0, np.nan, 3.0], "whole": [1, 2, 3], "flag": [True, False, True],
        "day": pd.to_datetime(["2024-01-01", None, "2024-03-01"]),
        "count": pd.array([1, None, 3], dtype="Int64"), "share": pd.array([1.5, None, 2.0], dtype="Float64"),
        "text": pd.array(["a", None, "c"], dtype="str"),
        "python_text": pd.array(["a", None, "c"], dtype="string"),
        "anything": pd.Series([None, "x", 1.5], dtype=object),
        "numbers": pd.Series([pd.NA, 2.0, 1.5], dtype=object),
    }, index=pd.Index(["h1", "h2", "h3"], name="household_id"))


def _same(expected: np.ndarray, got: np.ndarray) -> bool:
    return expected.dtype == got.dtype and expected.shape == got.shape and all(
        x is y or x == y or (pd.isna(x) and pd.isna(y) and type(x) is type(y))
        for x, y in zip(expected.tolist(), got.tolist(), strict=True))


def test_frame_of_equals_the_frame_pandas_builds():
    expected = _frame()
    columns = [column.to_numpy() if isinstance(column.dtype, np.dtype) else column.array
               for _, column in expected.items()]
    got = frame_of(columns, expected.index, expected.columns[:])
    pd.testing.assert_frame_equal(got, expected, check_exact=True)
    assert got.columns.tolist() == expected.columns.tolist()


def test_column_arrays_are_the_columns_and_skip_absent_names():
    frame = _frame()
    arrays = column_arrays(frame, ["text", "real", "absent"])
    assert list(arrays) == ["text", "real"]
    assert _same(frame["real"].to_numpy(), np.asarray(arrays["real"]))
    assert arrays["text"].tolist() == frame["text"].tolist()


@pytest.mark.parametrize("dtype, na_value", [
    (object, no_default), (object, None), (object, ""), (object, np.nan), (np.float64, no_default),
    (np.float64, np.nan), (np.float64, 0.0), ("datetime64[ns]", no_default), (str, no_default),
    (None, no_default),
])
def test_column_values_read_as_series_to_numpy(dtype, na_value):
    frame = _frame()
    arrays = column_arrays(frame, frame.columns)
    for name in frame.columns:
        kwargs = {} if na_value is no_default else {"na_value": na_value}
        try:
            expected = frame[name].to_numpy(dtype=dtype, **kwargs)
        except (TypeError, ValueError) as error:
            with pytest.raises(type(error)):
                column_values(arrays[name], dtype, na_value)
            continue
        assert _same(expected, column_values(arrays[name], dtype, na_value)), name


def test_boxed_is_to_numpy_object():
    frame = _frame()
    for name, array in column_arrays(frame, frame.columns).items():
        assert _same(frame[name].to_numpy(dtype=object), boxed(array)), name


def test_frame_of_gives_each_frame_its_own_labels():
    labels = pd.Index(["a", "b"])
    frame = frame_of([np.zeros(1), np.ones(1)], pd.RangeIndex(1), labels)
    frame.columns.name = "renamed"
    assert labels.name is None and frame.columns.equals(labels)
