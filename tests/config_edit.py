"""Editing params mappings in tests: drop one dotted key to check completeness errors."""

from hqm.config import deep_merge


def without(data: dict, dotted: str) -> dict:
    """A deep copy of ``data`` without the leaf ``dotted`` (e.g. ``train.epochs``)."""
    out = deep_merge(data, {})
    *parents, leaf = dotted.split(".")
    node = out
    for part in parents:
        node = node[part]
    del node[leaf]
    return out
