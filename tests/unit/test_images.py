"""Reading a record's image: local paths and http(s) URLs, the refusals that name the image, and chat data URLs."""

from __future__ import annotations

import base64
import functools
import io
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from PIL import Image

from ssi_plugin.annotation import images
from ssi_plugin.errors import AnnotationError


def _picture(path: Path, image_format: str, size: tuple[int, int] = (24, 16)) -> Path:
    Image.new("RGB", size, (200, 30, 90)).save(path, format=image_format)
    return path


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """``(base URL, folder)``: a local HTTP server over a temporary folder."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(tmp_path)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", tmp_path
    finally:
        server.shutdown()
        server.server_close()


def test_an_image_url_is_downloaded_and_a_failed_download_names_the_url(served: tuple[str, Path]) -> None:
    base, folder = served
    photo = _picture(folder / "photo.png", "PNG")
    assert images.read_image_bytes(f"{base}/photo.png") == photo.read_bytes()
    assert images.open_image(f"{base}/photo.png").size == (24, 16)

    with pytest.raises(AnnotationError) as missing:
        images.read_image_bytes(f"{base}/gone.png")
    assert missing.value.reason == "image_unreadable"
    assert f"cannot download {base}/gone.png" in missing.value.detail and "404" in missing.value.detail


def test_empty_and_oversized_files_are_refused_by_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    with pytest.raises(AnnotationError, match=r"empty\.jpg is empty"):
        images.read_image_bytes(str(empty))

    monkeypatch.setattr(images, "MAX_IMAGE_BYTES", 2 * 2**20)
    huge = tmp_path / "huge.png"
    huge.write_bytes(b"\x89PNG" + bytes(3 * 2**20))
    with pytest.raises(AnnotationError, match=r"huge\.png is larger than 2 MiB"):
        images.read_image_bytes(str(huge))

    with pytest.raises(AnnotationError, match="the record names no image"):
        images.read_image_bytes(None)


def test_chat_data_urls_keep_web_formats_and_turn_others_into_png(tmp_path: Path) -> None:
    jpeg = _picture(tmp_path / "photo.jpg", "JPEG")
    url = images.image_data_url(str(jpeg))
    assert url.startswith("data:image/jpeg;base64,")
    assert base64.b64decode(url.split(",", 1)[1]) == jpeg.read_bytes()  # sent as stored, not re-encoded

    bitmap = _picture(tmp_path / "scan.bmp", "BMP")
    url = images.image_data_url(str(bitmap))
    assert url.startswith("data:image/png;base64,")
    with Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))) as decoded:
        assert decoded.format == "PNG" and decoded.size == (24, 16)
        assert decoded.convert("RGB").getpixel((3, 3)) == (200, 30, 90)
