"""The feature registry: every feature declared once, built point-in-time.

A builder is a plain function decorated with :func:`feature`. It receives a
:class:`~features.snapshot.Snapshot` — the world already cut to the records *known* before the as-of
date T (see :func:`features.snapshot.known_before`) — and returns one value per household, either a
numpy array aligned to ``snap.ids`` or a Series indexed by household id. The registry, not the builder,
does the cut, so a builder cannot see the future; it also reindexes, fills households without records
(``fill``) and fixes the dtype (numeric float64, categorical pandas ``string``).

Builders must be per-household: a household's features depend only on its own records and on
region-level tables (regions, standards, disasters), never on other households. That is what makes
``build_features(..., households=subset)`` equal to the full table restricted to the subset.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import json
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
from pandas.api.internals import create_dataframe_from_blocks

from doudi.arrowtext import arrow_text
from doudi.io import World
from features.snapshot import EncodedWorld, Snapshot, encode_world, positions_in

Group = Literal["income", "medical", "disaster", "household", "employment", "assistance", "assets", "region"]
Kind = Literal["numeric", "categorical"]

GROUPS: tuple[str, ...] = (
    "income", "medical", "disaster", "household", "employment", "assistance", "assets", "region",
)
KINDS: tuple[str, ...] = ("numeric", "categorical")
_TABLE_NAMES = (
    "regions", "standards", "households", "members", "income", "medical_claims", "disasters",
    "disaster_losses", "employment_events", "assistance", "assets",
)

Builder = Callable[[Snapshot], "np.ndarray | pd.Series"]
_STRING = pd.api.types.pandas_dtype("string")
"""Categorical features' dtype (resolved once)."""
_STRING_ARRAY = _STRING.construct_array_type()


@dataclass(frozen=True)
class FeatureSpec:
    """Everything a reader, an explanation or a test needs to know about one feature.

    Attributes:
        name: snake_case identifier, the column name.
        group: feature family (one of ``GROUPS``).
        source: contract tables the builder reads.
        window_months: look-back window in months (None for point-in-time states).
        unit: unit of the value ("yuan/person/year", "ratio", "count", "0/1", "months", ...).
        monotone: +1 if a higher value raises risk, -1 if it lowers risk, 0 if unknown or mixed.
        kind: "numeric" (float64) or "categorical" (pandas string).
        zh, en: reason templates; ``{value}`` is the feature value (e.g. ``{value:.0%}``).
        label_zh, label_en: short plain-words name of the quantity, used when the value is missing.
        description: what the value is and how missing/undefined cases are handled.
        fill: value for households with no records at all (None keeps them missing).
        alt_below: when set and the value is below it, ``zh_alt``/``en_alt`` are used instead, formatted
            with the absolute value (a negative drop is a rise; a 0 flag is "none").
        value_words: for categoricals, (value, zh words, en words) used in the sentence for that value.
        reason: may be stated to a social worker as a reason for an alert. False for attributes that
            describe where or who a household is (county, urban/rural registration) rather than its
            situation: true to the model, but nothing to verify or act on, and not a ground to name.
        missing_is_gap: a missing value means the record is missing (worth checking at the visit). False
            when missing means "never happened" (months since a job loss that never occurred): such a
            value is never stated as a reason.
        builder: the function that computes it.
    """

    name: str
    group: Group
    source: tuple[str, ...]
    window_months: int | None
    unit: str
    monotone: int
    kind: Kind
    zh: str
    en: str
    label_zh: str
    label_en: str
    description: str
    fill: float | None = None
    alt_below: float | None = None
    zh_alt: str | None = None
    en_alt: str | None = None
    value_words: tuple[tuple[str, str, str], ...] = ()
    reason: bool = True
    missing_is_gap: bool = True
    builder: Builder | None = field(default=None, compare=False, repr=False)

    def metadata(self) -> dict[str, object]:
        """The spec as plain data (no builder), e.g. for logging with a model."""
        data = asdict(self)
        data.pop("builder")
        data["source"] = list(self.source)
        data["value_words"] = [list(words) for words in self.value_words]
        return data


REGISTRY: dict[str, FeatureSpec] = {}
"""Feature name -> spec, in declaration order (module import order, then order within a module)."""


def feature(
    *,
    name: str,
    group: Group,
    source: str | tuple[str, ...],
    window_months: int | None,
    unit: str,
    monotone: int,
    zh: str,
    en: str,
    label_zh: str,
    label_en: str,
    description: str,
    kind: Kind = "numeric",
    fill: float | None = None,
    alt_below: float | None = None,
    zh_alt: str | None = None,
    en_alt: str | None = None,
    value_words: tuple[tuple[str, str, str], ...] = (),
    reason: bool = True,
    missing_is_gap: bool = True,
) -> Callable[[Builder], Builder]:
    """Declare a feature and register its builder (the decorated function, returned unchanged).

    Raises:
        ValueError: on a duplicate name or an inconsistent declaration.
    """
    sources = (source,) if isinstance(source, str) else tuple(source)

    def register(builder: Builder) -> Builder:
        spec = FeatureSpec(
            name=name, group=group, source=sources, window_months=window_months, unit=unit,
            monotone=monotone, kind=kind, zh=zh, en=en, label_zh=label_zh, label_en=label_en,
            description=description, fill=fill, alt_below=alt_below, zh_alt=zh_alt, en_alt=en_alt,
            value_words=value_words, reason=reason, missing_is_gap=missing_is_gap, builder=builder,
        )
        _check_spec(spec)
        REGISTRY[name] = spec
        if builder.__doc__ is None:  # the declaration is the documentation: help() shows it
            builder.__doc__ = f"{description}\n\nUnit: {unit}. Group: {group}."
        return builder

    return register


def _check_spec(spec: FeatureSpec) -> None:
    problems = []
    if spec.name in REGISTRY:
        problems.append("is declared twice")
    if not spec.name.isidentifier() or spec.name != spec.name.lower():
        problems.append("name must be a snake_case identifier")
    if spec.group not in GROUPS:
        problems.append(f"group {spec.group!r} is not one of {GROUPS}")
    if spec.kind not in KINDS:
        problems.append(f"kind {spec.kind!r} is not one of {KINDS}")
    if spec.monotone not in (-1, 0, 1):
        problems.append("monotone must be -1, 0 or +1")
    if spec.kind == "categorical" and spec.monotone != 0:
        problems.append("a categorical feature has no monotone direction")
    unknown = [s for s in spec.source if s not in _TABLE_NAMES]
    if unknown:
        problems.append(f"unknown source table(s) {unknown}")
    if (spec.alt_below is None) != (spec.zh_alt is None) or (spec.zh_alt is None) != (spec.en_alt is None):
        problems.append("alt_below, zh_alt and en_alt go together")
    for text in (spec.zh, spec.en, spec.zh_alt, spec.en_alt):
        if text is not None and "{value" not in text and spec.alt_below is None:
            problems.append(f"template {text!r} does not state the value")
    if problems:
        raise ValueError(f"feature {spec.name!r}: " + "; ".join(problems))


def feature_names() -> list[str]:
    """Registered feature names in registry order (the model's input columns)."""
    return list(REGISTRY)


def registry_version() -> str:
    """Short sha256 over every spec, the source of the modules defining builders and the helpers they
    call (``features/*.py``), and the contract's tables (lags, codes): changes whenever a feature may."""
    from doudi.contract import TABLES

    digest = hashlib.sha256()
    for spec in REGISTRY.values():
        digest.update(json.dumps(spec.metadata(), sort_keys=True, ensure_ascii=False).encode())
    for path in sorted(Path(__file__).parent.glob("*.py")):
        digest.update(path.name.encode() + path.read_bytes())
    for spec in REGISTRY.values():  # builders declared outside the package
        if spec.builder is not None and not spec.builder.__module__.startswith("features"):
            try:
                digest.update(inspect.getsource(spec.builder).encode())
            except (OSError, TypeError):
                digest.update(f"{spec.builder!r}".encode())
    digest.update(repr(sorted(TABLES.items())).encode())
    return digest.hexdigest()[:12]


def reason_text(name: str, value: object, lang: str = "zh") -> str:
    """A sentence stating a feature's actual value in plain words (for the social worker's list).

    Args:
        name: feature name.
        value: the feature value (number, string for categoricals, None/NaN when missing).
        lang: "zh" or "en".

    Raises:
        KeyError: unknown feature. ValueError: unknown language.
    """
    if lang not in ("zh", "en"):
        raise ValueError(f"lang must be 'zh' or 'en', not {lang!r}")
    spec = REGISTRY[name]
    label = spec.label_zh if lang == "zh" else spec.label_en
    if _is_missing(value):  # the model reads a gap as a signal: say so, and what to do about it
        if lang == "zh":
            return f"{label}：暂无记录，请入户核实"
        return f"{label}: no record on file; check at the visit"
    template = spec.zh if lang == "zh" else spec.en
    if spec.kind == "categorical":
        words = {v: (zh, en) for v, zh, en in spec.value_words}.get(str(value))
        text = str(value) if words is None else words[0 if lang == "zh" else 1]
        return template.format(value=text)
    number = float(value)  # type: ignore[arg-type]
    if spec.alt_below is not None and number < spec.alt_below:
        template = (spec.zh_alt if lang == "zh" else spec.en_alt) or template
        number = abs(number)
    return template.format(value=number)


def _is_missing(value: object) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    if isinstance(value, float | np.floating):
        return math.isnan(value)
    return False


def build_features(
    world: World | EncodedWorld,
    as_of: pd.Timestamp | str,
    *,
    households: pd.Index | None = None,
    progress: Callable[[int, int, str], None] | None = None,
) -> pd.DataFrame:
    """Compute every registered feature for households as of T, from records known before T.

    Args:
        world: a contract world (``doudi.io.World``), or one prepared once with
            :func:`features.encode_world` to build many as-of dates without re-encoding.
        as_of: the as-of date T; only records with ``recorded_at < T`` and an event date before T count.
        households: household ids to return, in this order (default: every household).
        progress: called as ``progress(done, total, feature_name)`` after each feature.

    Returns:
        One row per household indexed by ``household_id``, one column per feature in registry order;
        numeric features float64, categorical features pandas ``string``.

    Raises:
        KeyError: a requested household is not in the households table.
    """
    encoded = world if isinstance(world, EncodedWorld) else encode_world(world)
    index = encoded.ids
    rows: np.ndarray | slice = slice(None)
    if households is not None:
        index = pd.Index(households, name="household_id")
        # The world's own households in table order (a score request's world holds just the requested
        # ones) need no look-up, and the features are taken as they are rather than gathered.
        if not _same_text(index, encoded.ids):
            # Arrow look-up for text ids (pandas' get_indexer costs ~0.3 ms per call for one household).
            is_text = isinstance(index.dtype, pd.StringDtype)
            positions = positions_in(index, encoded.ids) if is_text else encoded.ids.get_indexer(index)
            if (positions < 0).any():
                missing = list(index[positions < 0][:5])
                raise KeyError(f"households not in the households table: {missing}")
            same = len(positions) == len(encoded.ids) and np.array_equal(positions, np.arange(len(positions)))
            rows = slice(None) if same else positions
    snap = Snapshot(encoded, pd.Timestamp(as_of))
    specs = list(REGISTRY.values())
    layout = _layout(tuple((spec.kind == "categorical", spec.fill) for spec in specs))
    # Numeric features go straight into one float block (the frame's own storage: no second copy).
    block = np.empty((len(layout.numeric), len(index)))
    # Placements are copied: the frame keeps them, and the layout is shared by every call.
    blocks: list[tuple[np.ndarray | pd.api.extensions.ExtensionArray, np.ndarray]] = [
        (block, layout.numeric.copy())]
    texts: list[tuple[int, np.ndarray, float | None]] = []  # categorical features: position, values, fill
    for done, spec in enumerate(specs, start=1):
        values = _column(spec, snap)[rows]
        if spec.kind == "categorical":
            texts.append((done - 1, values, spec.fill))
        else:
            block[layout.row[done - 1]] = values
        if progress is not None:
            progress(done, len(specs), spec.name)
    _fill_missing(block, layout.filled, layout.fills)
    blocks += _text_blocks(texts, len(index))
    # The frame made from its blocks as they are: pd.DataFrame plus an insert per categorical feature
    # checked and copied the labels again (~0.1 ms an insert for one household).
    # A copy of the cached labels (sharing their look-up table): a caller may rename it.
    return create_dataframe_from_blocks(blocks, index=index, columns=_labels(tuple(REGISTRY)).copy())


def _same_text(index: pd.Index, ids: pd.Index) -> bool:
    """Whether two Arrow-backed text indexes hold the same values in the same order (compares buffers)."""
    left, right = arrow_text(index), arrow_text(ids)
    return left is not None and right is not None and left.type == right.type and left.equals(right)


@dataclass(frozen=True)
class _Layout:
    """Where the numeric features go in the frame's float block: ``numeric`` the frame positions of the
    block's rows; ``row[i]`` the block row of feature i (-1 for a categorical: a block of its own);
    ``filled`` the block rows of features with a ``fill``, and ``fills`` their fill values."""

    numeric: np.ndarray
    row: tuple[int, ...]
    filled: np.ndarray
    fills: np.ndarray


@functools.cache
def _layout(features: tuple[tuple[bool, float | None], ...]) -> _Layout:
    """The layout of features given as (categorical, fill)."""
    numeric = np.flatnonzero([not categorical for categorical, _ in features])
    rows = iter(range(len(numeric)))
    row = tuple(-1 if categorical else next(rows) for categorical, _ in features)
    filled = [(row[i], fill) for i, (categorical, fill) in enumerate(features)
              if not categorical and fill is not None]
    return _Layout(numeric=numeric, row=row, filled=np.array([r for r, _ in filled], dtype=np.int64),
                   fills=np.array([fill for _, fill in filled], dtype=np.float64))


_CHUNK = 1 << 16
"""Households per pass when filling missing values (bounds the copy of the filled rows)."""


def _fill_missing(block: np.ndarray, rows: np.ndarray, fills: np.ndarray) -> None:
    """Missing values (NaN) of the block's ``rows`` set to their ``fills``, all features in one pass
    rather than a pair of numpy calls per feature with a fill (27 of them)."""
    if not len(rows):
        return
    for start in range(0, block.shape[1], _CHUNK):
        part = block[rows, start:start + _CHUNK]
        np.copyto(part, fills[:, None], where=np.isnan(part))
        block[rows, start:start + _CHUNK] = part


@functools.cache
def _labels(names: tuple[str, ...]) -> pd.Index:
    # pandas' str dtype held as Python strings rather than Arrow: the same labels, written to Parquet the
    # same, but each frame[name] of a caller looks its label up in ~18 rather than ~30 µs.
    return pd.Index(list(names), dtype=pd.StringDtype("python", na_value=np.nan))


def _column(spec: FeatureSpec, snap: Snapshot) -> np.ndarray:
    """One feature aligned to ``snap.ids``: float64 values, or objects (text, None) for a categorical."""
    assert spec.builder is not None
    raw = spec.builder(snap)
    if isinstance(raw, pd.Series):
        if not raw.index.is_unique:
            raise ValueError(f"feature {spec.name}: builder returned duplicate household ids")
        raw = raw.reindex(snap.ids)
    elif len(raw) != snap.n:
        raise ValueError(f"feature {spec.name}: builder returned {len(raw)} values for {snap.n} households")
    if spec.kind == "categorical":
        return np.asarray(raw, dtype=object)
    return np.asarray(raw, dtype=np.float64)  # missing values are filled in the frame's block


def _text_blocks(
    texts: list[tuple[int, np.ndarray, float | None]], n: int
) -> list[tuple[pd.api.extensions.ExtensionArray, np.ndarray]]:
    """The categorical features (position, values, fill) as one-column pandas ``string`` blocks, missing
    values filled with ``str(fill)`` when given.

    What ``pd.array(values, dtype="string")`` does per feature, for all of them at once: one conversion
    to Arrow, sliced per feature (for one household, the second conversion of a build cost about a
    third of the first).
    """
    if not texts:
        return []
    joined = np.concatenate([values for _, values, _ in texts])
    arrays = _STRING_ARRAY._from_sequence(joined, dtype=_STRING)
    blocks = []
    for k, (position, _, fill) in enumerate(texts):
        array = arrays[k * n:(k + 1) * n]
        blocks.append((array if fill is None else array.fillna(str(fill)), np.array([position])))
    return blocks
