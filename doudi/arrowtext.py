"""Text columns as Arrow arrays, and look-ups in them: shared by the cohort (``doudi.labels``) and the
feature encoding (``features.snapshot``), which both match household ids and region keys."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc


def arrow_text(
    values: pd.Series | pd.Index | pd.api.extensions.ExtensionArray | np.ndarray,
) -> pa.Array | None:
    """The Arrow array behind Arrow-backed text (pandas' default string dtype, what Parquet gives),
    without a copy; None for text held as Python objects (a score request's columns, object dtype).
    ``values`` may also be the array behind a column (a numpy array is never Arrow text)."""
    array = values.array if isinstance(values, pd.Series | pd.Index) else values
    if not isinstance(array, pd.arrays.ArrowExtensionArray):
        return None
    # pandas' string dtype answers without the generic dtype test (a few µs a call).
    if not (isinstance(array.dtype, pd.StringDtype) or pd.api.types.is_string_dtype(array.dtype)):
        return None
    arrow = array.__arrow_array__()
    if isinstance(arrow, pa.ChunkedArray):
        arrow = arrow.combine_chunks() if arrow.num_chunks != 1 else arrow.chunk(0)
    return arrow


TEXT = pd.Index(["text"]).dtype
"""The dtype pandas infers for Python strings (its default ``str``)."""


def text_array(values: list[str] | np.ndarray) -> pd.api.extensions.ExtensionArray:
    """Python strings in the dtype pandas infers for them (:data:`TEXT`), built by Arrow: pandas' own
    conversion checks every value again, which costs more than the rest of a frame for a few rows."""
    return pd.arrays.ArrowStringArray(pa.array(values, type=pa.large_string()), dtype=TEXT)


def python_strings(values: pd.Series | pd.api.extensions.ExtensionArray | np.ndarray) -> np.ndarray | None:
    """The object array behind text held as Python strings (a score request's tables; missing as NA),
    without a copy; None for other columns (Arrow-backed text, what a loaded world holds). ``values``
    may also be the array behind a column."""
    if isinstance(values.dtype, pd.StringDtype) and values.dtype.storage == "python":
        return np.asarray(values.array if isinstance(values, pd.Series) else values, dtype=object)
    return None


def index_in(values: pa.Array, value_set: pa.Array) -> np.ndarray:
    """Position of each of ``values`` in ``value_set`` (-1 when absent; missing finds missing)."""
    found = pc.index_in(values, value_set=value_set)
    # Nulls (values not found) are filled only when there are any: the fill costs more than the look-up
    # itself for a few values.
    if found.null_count:
        found = found.fill_null(-1)
    return found.to_numpy(zero_copy_only=False).astype(np.int64)
