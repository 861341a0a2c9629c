"""Import Evidently on demand, with telemetry off and one pandas 3 compatibility gap filled.

Evidently 0.7.23 imports ``pandas.core.dtypes.common.infer_dtype_from_object`` at import time (for a
legacy column-type test doudi does not use); pandas 3 removed that private helper, so ``import
evidently`` fails. Until Evidently stops importing it, the helper is restored with its pandas 2
meaning (the numpy scalar type of a dtype) before the import. Nothing else is patched.
"""

from __future__ import annotations

from functools import cache
from types import SimpleNamespace

from doudi.settings import disable_telemetry


def _restore_infer_dtype_from_object() -> None:
    import pandas as pd
    import pandas.core.dtypes.common as common

    if not hasattr(common, "infer_dtype_from_object"):
        def infer_dtype_from_object(dtype: object) -> type:
            return pd.api.types.pandas_dtype(dtype).type

        common.infer_dtype_from_object = infer_dtype_from_object  # type: ignore[attr-defined]


@cache
def evidently() -> SimpleNamespace:
    """The Evidently names doudi uses (``Report``, ``Dataset``, ``DataDefinition``, metrics)."""
    disable_telemetry()
    _restore_infer_dtype_from_object()
    from evidently import DataDefinition, Dataset, Report
    from evidently.metrics import DatasetMissingValueCount, ValueDrift

    return SimpleNamespace(Report=Report, Dataset=Dataset, DataDefinition=DataDefinition,
                           ValueDrift=ValueDrift, DatasetMissingValueCount=DatasetMissingValueCount)
