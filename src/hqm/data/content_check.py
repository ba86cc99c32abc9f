"""Is a downloaded file what its name promises? Checked before a checksum is pinned.

A server can answer 200 with a login page, a quota notice or a truncated body; with no published
sha256 the first download would otherwise become the truth. Each check is cheap relative to the
download: a zip lists its central directory, a tar is read to its end (gzip detects truncation
there), a ``.pth`` loads as a state dict on the CPU, a JSON file parses, a pickle has its protocol
header and its final STOP opcode, a ``.mat`` file has the MATLAB header.
"""

from __future__ import annotations

import argparse
import json
import tarfile
import zipfile
from pathlib import Path

KINDS = ("archive", "state_dict", "json", "pickle", "mat")
_HTML_STARTS = (b"<!doctype html", b"<html", b"<head", b"<?xml", b"<body")


class ContentError(Exception):
    """The file is not what its name promises (message: the reason, lower case, no period)."""


def content_kind(path: str | Path, declared: str = "auto") -> str | None:
    """The check for ``path``: ``declared`` unless ``auto``, else from the suffix; None = no check."""
    if declared == "none":
        return None
    if declared != "auto":
        return declared
    name = Path(path).name.lower()
    if name.endswith((".zip", ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz")):
        return "archive"
    suffix = Path(name).suffix
    return {".pth": "state_dict", ".pt": "state_dict", ".json": "json", ".pickle": "pickle",
            ".pkl": "pickle", ".mat": "mat"}.get(suffix)  # fmt: skip


def check_content(path: str | Path, kind: str | None) -> None:
    """Raise :class:`ContentError` unless ``path`` is a sound file of ``kind`` (None: any file)."""
    path = Path(path)
    with open(path, "rb") as handle:
        head = handle.read(512)
    if not head:
        raise ContentError("the file is empty")
    if kind is None:
        return
    if head.lstrip()[:16].lower().startswith(_HTML_STARTS):
        raise ContentError("the file is a web page, not the expected file")
    {"archive": _check_archive, "state_dict": _check_state_dict, "json": _check_json,
     "pickle": _check_pickle, "mat": _check_mat}[kind](path, head)  # fmt: skip


def _reason(exc: BaseException) -> str:
    """An exception as a short single line."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 160 else text[:157] + "..."


def _check_archive(path: Path, head: bytes) -> None:
    if head.startswith(b"PK") or path.name.lower().endswith(".zip"):
        try:  # the central directory sits at the end: a cut zip does not open
            with zipfile.ZipFile(path) as zf:
                names = zf.namelist()
        except (zipfile.BadZipFile, OSError, EOFError) as exc:
            raise ContentError(f"the zip archive does not list ({_reason(exc)})") from None
    else:
        try:
            with tarfile.open(path) as tar:
                names = [member.name for member in tar]  # reads to the end: catches truncation
        except (tarfile.TarError, OSError, EOFError) as exc:
            first = str(exc).split(":")[0] if "\n" in str(exc) else _reason(exc)
            raise ContentError(f"the archive does not list as a tar ({first})") from None
    if not names:
        raise ContentError("the archive is empty")


def _check_state_dict(path: Path, head: bytes) -> None:
    # torch is imported here, not at the top: only .pth artefacts need it, and importing it costs
    # seconds that every other `hqm fetch` (archives, pickles, hand-placed files) would pay.
    import torch

    # Released QPIC/DETR checkpoints pickle their argparse Namespace next to the weights.
    try:
        with torch.serialization.safe_globals([argparse.Namespace]):
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many types for a damaged file
        lines = str(exc).strip().splitlines()
        raise ContentError(f"it does not load as a torch state dict ({_reason(lines[0] if lines else exc)})") from None
    weights = obj.get("model", obj) if isinstance(obj, dict) else None
    if not isinstance(weights, dict) or not any(isinstance(v, torch.Tensor) for v in weights.values()):
        raise ContentError("it loads, but holds no state dict of tensors")


def _check_json(path: Path, head: bytes) -> None:
    try:
        with open(path, encoding="utf-8") as handle:
            json.load(handle)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ContentError(f"it does not parse as JSON ({_reason(exc)})") from None


def _check_pickle(path: Path, head: bytes) -> None:
    # protocol >= 2 starts with PROTO (0x80) and its number; 0 and 1 with a container opcode
    if not ((head[0] == 0x80 and len(head) > 1 and 2 <= head[1] <= 5) or head[:1] in (b"(", b"}", b"]")):
        raise ContentError("it does not start like a pickle")
    with open(path, "rb") as handle:
        handle.seek(-1, 2)
        if handle.read(1) != b".":
            raise ContentError("the pickle has no final STOP opcode (truncated?)")


def _check_mat(path: Path, head: bytes) -> None:
    if not head.startswith(b"MATLAB"):
        raise ContentError("it has no MATLAB MAT-file header")
