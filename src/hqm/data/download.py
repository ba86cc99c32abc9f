"""Fetch external files from an ordered list of sources: verified, content-checked, atomic.

For one artefact (``ArtefactConfig``) :func:`fetch_artefact`

1. uses a file already at ``<data_dir>/<path>`` if its sha256 matches (placed by hand: no network);
   an unpinned one is content-checked before its digest is pinned;
2. otherwise tries each source in order (:mod:`hqm.data.sources`): plain HTTP into
   ``<path>.part``, resumed with a ``Range`` request after an interruption and retried with
   exponential back-off on connection errors and 5xx answers; Google Drive files and folders
   through ``gdown``. A source that answers 404, a web page, a short body, a file that fails
   the content check (:mod:`hqm.data.content_check`) or the wrong sha256 is dropped and the next
   one is tried;
3. pins the digest (``sha256: null``) only for a file that passed the content check, renames
   ``.part`` onto the destination; nothing is left behind when every source fails;
4. optionally unpacks a ``.tar*`` / ``.zip`` archive into ``extract_to`` (temporary folder, then
   rename).

Every failure is one line naming the artefact, the URL(s) with their reasons, and where to put
the file by hand.
"""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import sys
import tarfile
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

import requests
from tqdm import tqdm

from hqm.config import ArtefactConfig
from hqm.data.content_check import ContentError, check_content, content_kind
from hqm.data.sources import DriveClient, DriveError, GdownDrive, Source, artefact_sources
from hqm.errors import HqmError
from hqm.io import make_temp_dir, read_json, sha256_file, write_json

CHUNK = 1 << 16
_HEX = re.compile(r"^[0-9a-f]{8,64}$")


PIN_FILE = "checksums.json"
EXTRACTED_MARK = ".hqm-extracted"  # in an unpacked folder: the sha256 of the archive it came from


def _pins(data_dir: Path) -> dict:
    path = data_dir / PIN_FILE
    return read_json(path) if path.is_file() else {}


def _expected_hash(name: str, art: ArtefactConfig, data_dir: Path) -> str | None:
    """The digest to verify against: params, else this data dir's pin; None = not pinned yet."""
    if art.sha256 is None:
        pin = _pins(data_dir).get(name)
        return pin["sha256"] if pin else None
    expected = art.sha256.strip().lower()
    if not _HEX.match(expected):
        raise HqmError(f"artefact '{name}': sha256 must be 8 to 64 hex digits, got {art.sha256!r}")
    return expected


def _pin(name: str, art: ArtefactConfig, data_dir: Path, digest: str, url: str) -> None:
    """Trust on first use (after the content check): record the digest so later uses can verify."""
    # Snakemake runs several fetch jobs at once: read-modify-write under a lock, or pins get lost
    with open(data_dir / f"{PIN_FILE}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        pins = _pins(data_dir)
        pins[name] = {"sha256": digest, "url": url, "path": art.path}
        write_json(data_dir / PIN_FILE, pins)
    print(f"hqm fetch: artefact '{name}' has no published sha256; pinned {digest} in "
          f"{data_dir / PIN_FILE} (copy it to params: artefacts.{name}.sha256)", file=sys.stderr)


def _hash_matches(actual: str, expected: str) -> bool:
    return actual.startswith(expected)


class _Retryable(Exception):
    """A transient failure (connection dropped, timeout, 5xx): try again, resuming."""


class _SourceFailed(Exception):
    """This source cannot deliver the file (message: the reason); the next source is tried."""


def _download_once(session: requests.Session, url: str, part: Path, name: str, timeout: float,
                   progress: bool) -> None:  # fmt: skip
    """One attempt: resume ``part`` from its current size. Raises _Retryable or _SourceFailed."""
    offset = part.stat().st_size if part.exists() else 0
    headers = {"Range": f"bytes={offset}-"} if offset else {}
    try:
        response = session.get(url, headers=headers, stream=True, timeout=timeout)
    except (requests.ConnectionError, requests.Timeout) as exc:
        raise _Retryable(f"connection failed ({type(exc).__name__})") from None
    with response:
        if response.status_code == 416 and offset:
            return  # the part is already complete; the checks decide
        if response.status_code >= 500 or response.status_code == 429:
            raise _Retryable(f"HTTP {response.status_code}")
        if response.status_code >= 400:
            raise _SourceFailed(f"HTTP {response.status_code}")
        if "text/html" in response.headers.get("Content-Type", "") and not part.name.endswith((".html.part", ".htm.part")):
            # a dead link, a login wall or a folder view answers with a web page, not the file
            raise _SourceFailed("answered with a web page instead of the file")
        if response.status_code == 200 and offset:
            offset = 0  # server ignored the Range header: start over
        length = response.headers.get("Content-Length")
        total = offset + int(length) if length and length.isdigit() else None
        bar = tqdm(total=total, initial=offset, unit="B", unit_scale=True, desc=name,
                   disable=not progress or not sys.stderr.isatty())  # fmt: skip
        received = 0
        try:
            with open(part, "ab" if offset else "wb") as handle:
                for chunk in response.iter_content(CHUNK):
                    handle.write(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
        except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError) as exc:
            raise _Retryable(f"connection lost after {offset + received} bytes ({type(exc).__name__})") from None
        finally:
            bar.close()
        if total is not None and offset + received != total:
            raise _Retryable(f"received {offset + received} of the {total} bytes announced by Content-Length")


def _download_http(url: str, part: Path, name: str, retries: int, backoff: float, timeout: float,
                   progress: bool, sleep: Callable[[float], None]) -> None:  # fmt: skip
    """Resumable, retried plain-HTTP download of ``url`` into ``part``."""
    with requests.Session() as session:
        session.headers["Accept-Encoding"] = "identity"  # the bytes on disk are the bytes counted
        for attempt in range(retries + 1):
            try:
                _download_once(session, url, part, name, timeout, progress)
                return
            except _Retryable as exc:
                if attempt == retries:
                    raise _SourceFailed(f"failed after {retries + 1} attempts ({exc})") from None
                sleep(backoff * 2**attempt)


def _download_drive(source: Source, part: Path, drive: DriveClient, retries: int, timeout: float) -> None:
    """A Drive file or folder member into ``part`` (gdown works in a temporary sibling folder)."""
    tmp = make_temp_dir(part)
    try:
        out = tmp / part.name.removesuffix(".part")
        if source.kind == "gdrive":
            drive.download_file(source.ref, out, timeout, retries)
        else:
            drive.download_folder_member(source.ref, source.member or out.name, out, timeout, retries)
        os.replace(out, part)
    except DriveError as exc:
        raise _SourceFailed(str(exc)) from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _check_part(part: Path, art: ArtefactConfig, kind: str | None, expected: str | None) -> str:
    """Size, content and checksum of a finished download; its sha256, or _SourceFailed."""
    if art.size is not None and part.stat().st_size != art.size:
        raise _SourceFailed(f"got {part.stat().st_size} bytes, params say size {art.size}")
    try:
        check_content(part, kind)
    except ContentError as exc:
        raise _SourceFailed(f"content check failed: {exc}") from None
    actual = sha256_file(part)
    if expected is not None and not _hash_matches(actual, expected):
        raise _SourceFailed(f"checksum mismatch: sha256 {actual}, expected {expected}")
    return actual


def _by_hand(art: ArtefactConfig, dest: Path) -> str:
    how = f" ({art.manual})" if art.manual else ""
    return f"download it by hand{how} and place it at {dest}"


def _verify_present(name: str, art: ArtefactConfig, dest: Path, data_dir: Path, expected: str | None,
                    kind: str | None, url: str) -> str:  # fmt: skip
    """A file already at ``dest`` (downloaded before or placed by hand): verify, or check and pin.
    Returns its sha256."""
    actual = sha256_file(dest)
    if expected is not None:
        if not _hash_matches(actual, expected):
            raise HqmError(f"artefact '{name}': {dest} exists but its sha256 is {actual}, expected {expected}; "
                           f"remove it or replace it with the right file ({url})")  # fmt: skip
        return actual
    try:
        check_content(dest, kind)
    except ContentError as exc:
        raise HqmError(f"artefact '{name}': {dest} exists but fails the content check ({exc}); nothing was "
                       f"pinned; remove it or replace it with the right file ({url})") from None  # fmt: skip
    _pin(name, art, data_dir, actual, f"file placed at {dest}")
    return actual


def fetch_artefact(
    name: str,
    art: ArtefactConfig,
    data_dir: str | os.PathLike,
    *,
    offline: bool = False,
    retries: int = 5,
    backoff: float = 1.0,
    timeout: float = 60.0,
    progress: bool = True,
    drive: DriveClient | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> Path:
    """Make ``<data_dir>/<art.path>`` present and verified; return its path."""
    data_dir = Path(data_dir)
    dest = data_dir / art.path
    expected = _expected_hash(name, art, data_dir)
    kind = content_kind(art.path, art.content)
    sources = artefact_sources(name, art)
    first = sources[0].url if sources else (art.manual or "no source listed")
    if dest.is_file():
        actual = _verify_present(name, art, dest, data_dir, expected, kind, first)
        _maybe_extract(name, art, dest, data_dir, actual)
        return dest
    if offline:
        raise HqmError(f"artefact '{name}': {dest} is missing and network use is off; {_by_hand(art, dest)}"
                       f" (from {first})")  # fmt: skip
    if not sources:
        raise HqmError(f"artefact '{name}': {dest} is missing and no source can be fetched automatically; "
                       f"{_by_hand(art, dest)}")  # fmt: skip
    part = dest.with_name(dest.name + ".part")
    failures, current, actual = [], first, ""
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        for source in sources:
            current = source.url
            part.unlink(missing_ok=True)  # never resume another source's bytes
            try:
                if source.kind == "http":
                    _download_http(source.url, part, name, retries, backoff, timeout, progress, sleep)
                else:
                    client = drive or GdownDrive(progress=progress and sys.stderr.isatty(), desc=name)
                    _download_drive(source, part, client, retries, timeout)
                actual = _check_part(part, art, kind, expected)
            except _SourceFailed as exc:
                failures.append(f"{source.url}: {exc}")
                continue
            if expected is None:
                _pin(name, art, data_dir, actual, source.url)
            os.replace(part, dest)
            break
    except OSError as exc:  # disk full, read-only folder: the environment, not the source
        raise OSError(exc.errno, f"artefact '{name}': cannot write {exc.filename or dest} ({exc.strerror or exc}) "
                      f"while fetching {current}; "
                      f"free space or choose another --data-dir") from None  # fmt: skip
    finally:
        part.unlink(missing_ok=True)
    if not dest.is_file():
        raise HqmError(f"artefact '{name}': no source delivered the file ({'; '.join(failures)}); "
                       f"{_by_hand(art, dest)}")  # fmt: skip
    _maybe_extract(name, art, dest, data_dir, actual)
    return dest



def _maybe_extract(name: str, art: ArtefactConfig, archive: Path, data_dir: Path, digest: str) -> None:
    """Unpack into ``extract_to`` once per archive: the folder holds the archive's sha256 in
    EXTRACTED_MARK, and a folder unpacked from another file (a new digest) is unpacked again. A
    folder without the mark (unpacked by hand) is used as it is."""
    if not art.extract_to:
        return
    target = data_dir / art.extract_to
    mark = target / EXTRACTED_MARK
    if target.exists():
        if not mark.is_file() or mark.read_text().strip() == digest:
            return
        shutil.rmtree(target)  # stale: unpacked from the file this one replaced
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = make_temp_dir(target)
    try:
        if tarfile.is_tarfile(archive):
            with tarfile.open(archive) as tar:
                tar.extractall(tmp, filter="data")
        elif zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as zf:
                for member in zf.namelist():
                    if member.startswith("/") or ".." in Path(member).parts:
                        raise HqmError(f"artefact '{name}': {archive} has an unsafe member path {member!r}")
                zf.extractall(tmp)
        else:
            raise HqmError(f"artefact '{name}': {archive} is neither a tar nor a zip archive, cannot extract")
        top = list(tmp.iterdir())
        if art.strip_top_folder and (len(top) != 1 or not top[0].is_dir()):
            raise HqmError(f"artefact '{name}': {archive} has {len(top)} top-level entries, strip_top_folder "
                           f"needs exactly one folder; set strip_top_folder: false")  # fmt: skip
        unpacked = top[0] if art.strip_top_folder else tmp
        (unpacked / EXTRACTED_MARK).write_text(digest + "\n")
        os.replace(unpacked, target)
    except (tarfile.TarError, zipfile.BadZipFile, EOFError) as exc:
        raise HqmError(f"artefact '{name}': {archive} is a damaged archive ({exc})") from None
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def fetch_all(artefacts: dict[str, ArtefactConfig], names: list[str] | None, data_dir: str | os.PathLike,
              where: str = "params", **kwargs) -> dict[str, Path]:  # fmt: skip
    """Fetch the named artefacts (all when ``names`` is empty); unknown names are an error."""
    names = list(names or artefacts)
    unknown = [n for n in names if n not in artefacts]
    if unknown:
        raise HqmError(f"{where}: unknown artefact(s) {', '.join(unknown)} (defined: {', '.join(artefacts) or 'none'})")
    return {n: fetch_artefact(n, artefacts[n], data_dir, **kwargs) for n in names}
