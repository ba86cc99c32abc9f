"""Where an artefact can come from: parsing its ordered sources and the Google Drive client.

A source is one string of ``artefacts.<name>.sources``:

* ``https://...`` / ``http://...``: a plain download (resumed with ``Range``, retried);
* ``gdrive:<file id>`` or a ``drive.google.com`` file link: one Drive file, through ``gdown``
  (it answers Drive's "cannot scan for viruses" confirmation);
* ``gdrive-folder:<folder id>[/<file>]`` or a ``drive.google.com/drive/folders/<id>`` link: the
  file named ``<file>`` (default: the artefact's file name) inside a shared Drive folder.

:class:`GdownDrive` is the only code that talks to Drive; tests swap in another
:class:`DriveClient` or route gdown's requests to a local server.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol
from urllib.parse import parse_qs, urlparse

import gdown
import requests
from gdown.exceptions import FileURLRetrievalError
from tqdm import tqdm

from hqm.config import ArtefactConfig
from hqm.errors import HqmError

try:  # gdown >= 5 names its transfer failure DownloadError; older releases have none
    from gdown.exceptions import DownloadError as _GdownDownloadError
except ImportError:  # pragma: no cover - depends on the installed gdown
    _GdownDownloadError = FileURLRetrievalError

_DRIVE_HOSTS = ("drive.google.com", "docs.google.com")
_ID = re.compile(r"^[-\w]{10,}$")


@dataclass(frozen=True)
class Source:
    """One place to get an artefact from. ``url`` is what messages show a user."""

    kind: Literal["http", "gdrive", "gdrive_folder"]
    ref: str  # the URL (http) or the Drive id
    member: str | None = None  # the file inside a Drive folder
    url: str = ""


def _drive_source(kind: str, ref: str, member: str | None, name: str, text: str) -> Source:
    if not _ID.match(ref):
        raise HqmError(f"artefact '{name}': source {text!r} has no valid Google Drive id")
    if kind == "gdrive":
        return Source("gdrive", ref, None, f"https://drive.google.com/uc?id={ref}")
    return Source("gdrive_folder", ref, member, f"https://drive.google.com/drive/folders/{ref}")


def parse_source(text: str, name: str, default_member: str) -> Source:
    """One source string -> :class:`Source`; a malformed one is a one-line error naming it."""
    text = text.strip()
    for prefix, kind in (("gdrive-folder:", "gdrive_folder"), ("gdrive:", "gdrive")):
        if text.startswith(prefix):
            ref, _, member = text[len(prefix):].partition("/")
            return _drive_source(kind, ref, member or default_member, name, text)
    parsed = urlparse(text)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise HqmError(f"artefact '{name}': source {text!r} is neither an http(s) URL nor gdrive:<id>")
    if parsed.hostname in _DRIVE_HOSTS:
        folder = re.match(r"^/drive/(?:u/\d+/)?folders/([-\w]+)", parsed.path)
        if folder:
            return _drive_source("gdrive_folder", folder.group(1), default_member, name, text)
        file_id = parse_qs(parsed.query).get("id", [None])[0]
        match = re.match(r"^/file/(?:u/\d+/)?d/([-\w]+)", parsed.path)
        file_id = file_id or (match.group(1) if match else None)
        if file_id:
            return _drive_source("gdrive", file_id, None, name, text)
    return Source("http", text, None, text)


def artefact_sources(name: str, art: ArtefactConfig) -> list[Source]:
    """The ordered sources of ``art``: ``sources`` first, then the older ``gdrive_id`` and ``url``."""
    texts = list(art.sources)
    if art.gdrive_id:
        texts.append(f"gdrive:{art.gdrive_id}")
    if art.url:
        texts.append(art.url)
    member = Path(art.path).name
    found: list[Source] = []
    for text in texts:
        source = parse_source(text, name, member)
        if source not in found:
            found.append(source)
    return found


# The keys of an artefact entry that say where to get the file, not which file it is: changing them
# (adding a mirror) must not make a workflow fetch again or rerun what depends on the file.
LOCATION_KEYS = ("sources", "url", "gdrive_id", "manual")


def artefact_identity(entry: dict) -> dict:
    """An ``artefacts.<name>`` entry without :data:`LOCATION_KEYS`: path, sha256, unpacking, size."""
    return {k: v for k, v in entry.items() if k not in LOCATION_KEYS}


class DriveError(Exception):
    """A Drive source failed (message: the reason, one line)."""


class DriveClient(Protocol):
    """Downloads from Google Drive into a local file; raises :class:`DriveError`."""

    def download_file(self, file_id: str, out: Path, timeout: float, retries: int) -> None: ...

    def download_folder_member(self, folder_id: str, member: str, out: Path, timeout: float,
                               retries: int) -> None: ...  # fmt: skip


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return (text[:200] + "...") if len(text) > 200 else (text or type(exc).__name__)


class GdownDrive:
    """The real Drive client: ``gdown.download`` (file, confirmation flow) and
    ``gdown.download_folder`` (listing a shared folder). No cookie file is read or written;
    ``progress`` shows a bar (gdown itself stays quiet: stdout belongs to ``hqm fetch``)."""

    _ERRORS = (FileURLRetrievalError, _GdownDownloadError, requests.RequestException, ValueError)

    def __init__(self, progress: bool = False, desc: str = ""):
        self.progress, self.desc = progress, desc

    def download_file(self, file_id: str, out: Path, timeout: float, retries: int) -> None:
        bar = tqdm(unit="B", unit_scale=True, desc=self.desc, disable=not self.progress)

        def advance(done: int, total: int | None) -> None:
            bar.total = total
            bar.update(done - bar.n)

        try:
            gdown.download(id=file_id, output=os.fspath(out), quiet=True, use_cookies=False,
                           timeout=timeout, retries=retries, progress=advance)  # fmt: skip
        except self._ERRORS as exc:
            raise DriveError(_one_line(exc)) from None
        finally:
            bar.close()
        if not out.is_file():
            raise DriveError("gdown finished without writing the file")

    def download_folder_member(self, folder_id: str, member: str, out: Path, timeout: float,
                               retries: int) -> None:  # fmt: skip
        try:
            listing = gdown.download_folder(id=folder_id, output=os.fspath(out.parent) + os.sep, quiet=True,
                                            use_cookies=False, skip_download=True, timeout=timeout)  # fmt: skip
        except self._ERRORS as exc:
            raise DriveError(f"the folder does not list ({_one_line(exc)})") from None
        listing = listing or []
        wanted = [f for f in listing if f.path == member] or [f for f in listing if Path(f.path).name == member]
        if not wanted:
            names = ", ".join(sorted(f.path for f in listing)) or "nothing"
            raise DriveError(f"the folder holds no {member!r} (it holds {names})")
        self.download_file(wanted[0].id, out, timeout, retries)
