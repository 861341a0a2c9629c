"""The pages' one message catalogue: ``serving/messages/<lang>.yaml`` (Chinese by default, English).

Templates never hold words of their own: every label, sentence and error goes through ``message(lang,
key, **params)``. Both catalogues must have exactly the same keys (a test checks), so a missing
translation is a test failure, not a blank on the page.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Any

import yaml

LANGS = ("zh", "en")
DEFAULT_LANG = "zh"


def _flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(_flatten(value, f"{name}."))
        else:
            out[name] = str(value)
    return out


@cache
def catalogue(lang: str) -> dict[str, str]:
    """All messages of a language as flat dotted keys (``error.required``)."""
    if lang not in LANGS:
        raise ValueError(f"unknown language {lang!r}: use one of {LANGS}")
    text = resources.files("serving").joinpath("messages", f"{lang}.yaml").read_text(encoding="utf-8")
    return _flatten(yaml.safe_load(text))


def message(lang: str, key: str, /, **params: Any) -> str:
    """The message ``key`` in ``lang`` with ``{name}`` placeholders filled.

    Raises:
        KeyError: the key is in neither catalogue (a programming error, caught by the tests).
    """
    text = catalogue(lang).get(key)
    if text is None:
        text = catalogue(DEFAULT_LANG)[key]
    return text.format(**params) if params else text


def has(lang: str, key: str) -> bool:
    """Whether the catalogue has ``key``."""
    return key in catalogue(lang)


def pick_lang(query: str | None, cookie: str | None) -> str:
    """The page language: ``?lang=`` first, then the cookie, then Chinese."""
    for value in (query, cookie):
        if value in LANGS:
            return value
    return DEFAULT_LANG
