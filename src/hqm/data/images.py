"""Opening dataset images with one-line errors (torch-free; used by the datasets and check-dataset)."""

from __future__ import annotations

import warnings
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from hqm.errors import HqmError


def load_rgb(path: Path, listed_in: Path) -> Image.Image:
    """Decode ``path`` fully into an RGB image.

    A missing, unreadable, truncated or corrupt file, or one whose pixel count PIL treats as a
    decompression bomb, raises a one-line HqmError naming the image and the annotation file
    ``listed_in`` that lists it. PIL's DecompressionBombWarning (more than ``Image.MAX_IMAGE_PIXELS``
    pixels) is an error here too: no dataset image is that large, so such a file is hostile.
    """
    source = f"listed in {listed_in.name}"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                return img.convert("RGB")  # convert() forces the full decode: truncation shows here
    except FileNotFoundError:
        raise HqmError(f"{path}: image file not found ({source})") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise HqmError(f"{path}: image refused as a decompression bomb ({source}): {_first_line(exc)}") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        # PIL reports corrupt data as OSError (truncated), SyntaxError (bad PNG chunks) or ValueError
        raise HqmError(f"{path}: unreadable image ({source}): {type(exc).__name__}: {_first_line(exc)}") from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else "no detail"


def check_listed_images_exist(folder: Path, file_names: list[str], listed_in: Path) -> None:
    """One-line HqmError for the first listed image that is not a file in ``folder`` (stat only).

    Run when a dataset is built, so a missing image stops training before the first epoch rather
    than in the middle of one.
    """
    for name in file_names:
        path = folder / name
        if not path.is_file():
            raise HqmError(f"{path}: image file not found (listed in {listed_in.name})")
