"""Reading a record's image (local path or http(s) URL) for the annotators that look at pixels.

Every way an image can be unusable (no image, missing file, failed download,
truncated or corrupt data, an unknown format) becomes one named failure,
``image_unreadable``, with a detail that names the image.
"""

from __future__ import annotations

import base64
import io
from pathlib import Path
from typing import TYPE_CHECKING

from ssi_plugin.datasets._paths import is_url
from ssi_plugin.errors import AnnotationError

if TYPE_CHECKING:
    from PIL import Image

DOWNLOAD_TIMEOUT_S = 15.0
MAX_IMAGE_BYTES = 50 * 1024 * 1024
_WEB_FORMATS = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp", "GIF": "image/gif"}


def read_image_bytes(ref: str | None, *, timeout: float = DOWNLOAD_TIMEOUT_S) -> bytes:
    """The raw bytes of the image at ``ref``."""
    if not ref:
        raise AnnotationError("image_unreadable", "the record names no image")
    if ref.startswith(("http://", "https://")):
        import httpx

        try:
            response = httpx.get(ref, timeout=timeout, follow_redirects=True)
            response.raise_for_status()
        except httpx.HTTPError as exc:
            raise AnnotationError("image_unreadable", f"cannot download {ref}: {exc}") from None
        data = response.content
    else:
        try:
            data = Path(ref).read_bytes()
        except OSError as exc:
            raise AnnotationError("image_unreadable", f"cannot read {ref}: {exc.strerror or exc}") from None
    if not data:
        raise AnnotationError("image_unreadable", f"{ref} is empty")
    if len(data) > MAX_IMAGE_BYTES:
        raise AnnotationError("image_unreadable", f"{ref} is larger than {MAX_IMAGE_BYTES // 2**20} MiB")
    return data


def decode_image(data: bytes, ref: str, *, draft_size: int | None = None) -> Image.Image:
    """A fully decoded RGB image. ``draft_size`` lets JPEG decode at reduced scale (much faster)."""
    from PIL import Image, UnidentifiedImageError

    try:
        image = Image.open(io.BytesIO(data))
        if draft_size is not None:
            image.draft("RGB", (draft_size, draft_size))
        image.load()
        return image.convert("RGB")
    except UnidentifiedImageError:
        raise AnnotationError("image_unreadable", f"{ref} is not an image in a known format") from None
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise AnnotationError("image_unreadable", f"{ref} is not a readable image: {exc}") from None


def check_image(ref: str | None) -> None:
    """Raise ``image_unreadable`` unless the local image at ``ref`` opens and its header verifies (no pixel decode).

    Cheap enough to run on every record before annotation, so a missing or corrupt
    file is never indexed. URLs (http(s), ``data:``...) and records without an
    image pass unopened.
    """
    if not ref or is_url(ref):
        return
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(ref) as image:
            image.verify()
    except UnidentifiedImageError:
        raise AnnotationError("image_unreadable", f"{ref} is not an image in a known format") from None
    except (FileNotFoundError, IsADirectoryError, PermissionError) as exc:
        raise AnnotationError("image_unreadable", f"cannot read {ref}: {exc.strerror or exc}") from None
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise AnnotationError("image_unreadable", f"{ref} is not a readable image: {exc}") from None


def open_image(ref: str | None, *, draft_size: int | None = None) -> Image.Image:
    """Read and decode the image at ``ref``."""
    return decode_image(read_image_bytes(ref), ref or "", draft_size=draft_size)


def image_data_url(ref: str | None) -> str:
    """The image as a ``data:`` URL for a chat request; checked to decode, re-encoded as PNG if not a web format."""
    from PIL import Image

    data = read_image_bytes(ref)
    image = decode_image(data, ref or "")
    mime = _WEB_FORMATS.get(Image.open(io.BytesIO(data)).format or "")
    if mime is None:
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        data, mime = buffer.getvalue(), "image/png"
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"
