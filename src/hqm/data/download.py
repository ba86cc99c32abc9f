"""Fetch external files: resumable, retried, verified, atomic; Google Drive confirmation flow.

For one artefact (``ArtefactConfig``: url, sha256, path, gdrive_id, extract_to) :func:`fetch_artefact`

1. uses a file already at ``<data_dir>/<path>`` if its sha256 matches (placed by hand: no network);
2. otherwise downloads into ``<path>.part``, resuming with an HTTP ``Range`` request after an
   interruption, retrying with exponential back-off on connection errors and 5xx answers;
3. verifies the sha256 (a full digest, or a prefix of at least 8 hex digits as in DETR's file
   names) and renames ``.part`` onto the destination;
4. optionally unpacks a ``.tar*`` / ``.zip`` archive into ``extract_to`` (temporary folder, then
   rename).

Every failure is one :class:`HqmError` line naming the artefact, the reason and where to put the
file by hand.
"""

from __future__ import annotations

import html
import os
import re
import shutil
import sys
import tarfile
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlencode, urljoin

import requests
from tqdm import tqdm

from hqm.config import ArtefactConfig
from hqm.errors import HqmError
from hqm.io import make_temp_dir, read_json, sha256_file, write_json

GDRIVE_URL = "https://drive.google.com/uc"
CHUNK = 1 << 16
_HEX = re.compile(r"^[0-9a-f]{8,64}$")


PIN_FILE = "checksums.json"


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


def _pin(name: str, art: ArtefactConfig, data_dir: Path, digest: str) -> None:
    """Trust on first use: record the digest so later uses (and other machines) can verify."""
    pins = _pins(data_dir)
    pins[name] = {"sha256": digest, "url": art.url, "path": art.path}
    write_json(data_dir / PIN_FILE, pins)
    print(f"hqm fetch: artefact '{name}' has no published sha256; pinned {digest} in "
          f"{data_dir / PIN_FILE} (copy it to params: artefacts.{name}.sha256)", file=sys.stderr)


def _hash_matches(actual: str, expected: str) -> bool:
    return actual.startswith(expected)


class _Retryable(Exception):
    """A transient failure (connection dropped, timeout, 5xx): try again, resuming."""


def _http_error(name: str, url: str, status: int, dest: Path) -> HqmError:
    return HqmError(f"artefact '{name}': HTTP {status} from {url}; download it by hand and place it at {dest}")


def _gdrive_confirm_url(response: requests.Response, base_url: str) -> str | None:
    """The real download URL behind Google Drive's 'cannot scan for viruses' page, if any."""
    for key, value in response.cookies.items():
        if key.startswith("download_warning"):
            return f"{response.url}{'&' if '?' in response.url else '?'}{urlencode({'confirm': value})}"
    text = response.text
    form = re.search(r'<form[^>]*id="download-form"[^>]*action="([^"]+)"[^>]*>(.*?)</form>', text, re.S)
    if form:
        inputs = re.findall(r'<input[^>]*type="hidden"[^>]*name="([^"]+)"[^>]*value="([^"]*)"', form.group(2))
        action = urljoin(base_url, html.unescape(form.group(1)))
        return f"{action}?{urlencode([(k, html.unescape(v)) for k, v in inputs])}"
    token = re.search(r"confirm=([0-9A-Za-z_-]+)", text)
    if token:
        return f"{response.url}{'&' if '?' in response.url else '?'}{urlencode({'confirm': token.group(1)})}"
    return None


def _download_once(session: requests.Session, url: str, part: Path, name: str, dest: Path, timeout: float,
                   progress: bool, gdrive_base: str | None) -> None:  # fmt: skip
    """One attempt: resume ``part`` from its current size. Raises _Retryable or HqmError."""
    offset = part.stat().st_size if part.exists() else 0
    headers = {"Range": f"bytes={offset}-"} if offset else {}
    try:
        response = session.get(url, headers=headers, stream=True, timeout=timeout)
    except (requests.ConnectionError, requests.Timeout) as exc:
        raise _Retryable(f"connection failed ({type(exc).__name__})") from None
    with response:
        if response.status_code == 416 and offset:
            return  # the part is already complete; the checksum decides
        if response.status_code >= 500 or response.status_code == 429:
            raise _Retryable(f"HTTP {response.status_code}")
        if response.status_code >= 400:
            raise _http_error(name, url, response.status_code, dest)
        if gdrive_base is not None and "text/html" in response.headers.get("Content-Type", ""):
            confirm = _gdrive_confirm_url(response, gdrive_base)
            if confirm is None:
                raise HqmError(
                    f"artefact '{name}': Google Drive returned a page without a download link (quota or "
                    f"permissions?); download {url} by hand and place it at {dest}"
                )
            return _download_once(session, confirm, part, name, dest, timeout, progress, None)
        if "text/html" in response.headers.get("Content-Type", "") and dest.suffix not in (".html", ".htm"):
            # a dead link, a login wall or a folder view answers with a web page, not the file
            raise HqmError(
                f"artefact '{name}': {url} answered with a web page instead of the file; "
                f"download it by hand and place it at {dest}"
            )
        if response.status_code == 200 and offset:
            offset = 0  # server ignored the Range header: start over
        length = response.headers.get("Content-Length")
        total = offset + int(length) if length and length.isdigit() else None
        mode = "ab" if offset else "wb"
        bar = tqdm(total=total, initial=offset, unit="B", unit_scale=True, desc=name,
                   disable=not progress or not sys.stderr.isatty())  # fmt: skip
        received = 0
        try:
            with open(part, mode) as handle:
                for chunk in response.iter_content(CHUNK):
                    handle.write(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
        except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError) as exc:
            raise _Retryable(f"connection lost after {offset + received} bytes ({type(exc).__name__})") from None
        finally:
            bar.close()
        if total is not None and offset + received < total:
            raise _Retryable(f"connection closed after {offset + received} of {total} bytes")


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
    gdrive_base: str = GDRIVE_URL,
    sleep: Callable[[float], None] = time.sleep,
) -> Path:
    """Make ``<data_dir>/<art.path>`` present and verified; return its path."""
    data_dir = Path(data_dir)
    dest = data_dir / art.path
    expected = _expected_hash(name, art, data_dir)
    if dest.is_file():
        actual = sha256_file(dest)
        if expected is None:
            _pin(name, art, data_dir, actual)
        elif not _hash_matches(actual, expected):
            raise HqmError(
                f"artefact '{name}': {dest} exists but its sha256 is {actual}, expected {expected}; "
                f"remove it or replace it with the right file ({art.url})"
            )
        _maybe_extract(name, art, dest, data_dir)
        return dest
    if offline:
        raise HqmError(f"artefact '{name}': {dest} is missing and network use is off; download {art.url} and place it there")
    if art.gdrive_id:
        url, gbase = f"{gdrive_base}?{urlencode({'export': 'download', 'id': art.gdrive_id})}", gdrive_base
    else:
        url, gbase = art.url, None
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    last = ""
    with requests.Session() as session:
        for attempt in range(retries + 1):
            try:
                _download_once(session, url, part, name, dest, timeout, progress, gbase)
                break
            except _Retryable as exc:
                last = str(exc)
                if attempt == retries:
                    raise HqmError(
                        f"artefact '{name}': download from {url} failed after {retries + 1} attempts ({last}); "
                        f"the partial file {part} resumes next time, or place the file by hand at {dest}"
                    ) from None
                sleep(backoff * 2**attempt)
    actual = sha256_file(part)
    if expected is None:
        _pin(name, art, data_dir, actual)
    elif not _hash_matches(actual, expected):
        part.unlink()
        raise HqmError(
            f"artefact '{name}': checksum mismatch for {url}: sha256 {actual}, expected {expected}; "
            f"the download was removed; fetch the right file by hand and place it at {dest}"
        )
    os.replace(part, dest)
    _maybe_extract(name, art, dest, data_dir)
    return dest


def _maybe_extract(name: str, art: ArtefactConfig, archive: Path, data_dir: Path) -> None:
    """Unpack into ``extract_to`` once (the folder's existence marks completion)."""
    if not art.extract_to:
        return
    target = data_dir / art.extract_to
    if target.exists():
        return
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
        os.replace(tmp, target)
    except (tarfile.TarError, zipfile.BadZipFile, OSError) as exc:
        raise HqmError(f"artefact '{name}': {archive} is a damaged archive ({exc})") from None
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def fetch_all(artefacts: dict[str, ArtefactConfig], names: list[str] | None, data_dir: str | os.PathLike,
              **kwargs) -> dict[str, Path]:  # fmt: skip
    """Fetch the named artefacts (all when ``names`` is empty); unknown names are an error."""
    names = list(names or artefacts)
    unknown = [n for n in names if n not in artefacts]
    if unknown:
        raise HqmError(f"params: unknown artefact(s) {', '.join(unknown)} (defined: {', '.join(artefacts) or 'none'})")
    return {n: fetch_artefact(n, artefacts[n], data_dir, **kwargs) for n in names}
