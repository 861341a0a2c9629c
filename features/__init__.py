"""Point-in-time household features for doudi: a registry of declared features and their builders.

Importing the package registers every feature (the family modules in ``FAMILIES``, in that order); the
order of ``REGISTRY`` is the model's column order.
"""

from importlib import import_module

from features.registry import (
    GROUPS,
    REGISTRY,
    FeatureSpec,
    build_features,
    feature,
    feature_names,
    reason_text,
    registry_version,
)
from features.snapshot import EncodedWorld, Snapshot, encode_world, known_before

FAMILIES = ("income", "medical", "disaster", "household", "employment", "assistance", "assets", "region")
"""Builder modules, imported in this order: their @feature declarations fill REGISTRY in this order."""
for _family in FAMILIES:
    import_module(f"features.{_family}")

REGISTRY_VERSION = registry_version()
"""Short hash of every feature spec and builder: log it with a model; it changes when a feature does."""

__all__ = [
    "FAMILIES",
    "GROUPS",
    "REGISTRY",
    "REGISTRY_VERSION",
    "EncodedWorld",
    "FeatureSpec",
    "Snapshot",
    "build_features",
    "encode_world",
    "feature",
    "feature_names",
    "known_before",
    "reason_text",
]
