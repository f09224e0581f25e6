"""The image URLs a chat client sends: no local files, no internal addresses, bounded downloads; each refusal names the URL."""

from __future__ import annotations

import base64
import io
import ipaddress
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from PIL import Image

from ssi_plugin.annotation.image_urls import ImageURLReader, IPAddress, is_public_address
from ssi_plugin.errors import InputError

BIG = 3 * 2**19


def _png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (24, 16), (200, 30, 90)).save(buffer, format="PNG")
    return buffer.getvalue()


class _ImageSite(BaseHTTPRequestHandler):
    """/photo.png; /to?URL redirects there; /loop redirects to itself; /big and /big-unsized send 1.5 MiB; /slow, /trickle dawdle."""

    def do_GET(self) -> None:
        path, _, query = self.path.partition("?")
        if path == "/photo.png":
            self._send(_png())
        elif path == "/to":
            self._redirect(query)
        elif path == "/loop":
            self._redirect("/loop")
        elif path == "/big":
            self._send(bytes(BIG))
        elif path == "/big-unsized":
            self.send_response(200)
            self.end_headers()
            self.wfile.write(bytes(BIG))
            self.close_connection = True
        elif path == "/slow":
            time.sleep(2)
            self._send(_png())
        elif path == "/trickle":
            self.send_response(200)
            self.send_header("Content-Length", "100")
            self.end_headers()
            for _ in range(20):
                self.wfile.write(b"x")
                self.wfile.flush()
                time.sleep(0.1)
        else:
            self.send_error(404)

    def _send(self, body: bytes) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _redirect(self, location: str) -> None:
        self.send_response(302)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


class _Server(ThreadingHTTPServer):
    def handle_error(self, request: object, client_address: object) -> None:
        """Silent: the reader hangs up on the big and slow pages on purpose."""


@pytest.fixture(scope="module")
def site() -> Iterator[str]:
    """The base URL of a small image site on loopback."""
    server = _Server(("127.0.0.1", 0), _ImageSite)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _site_is_public(address: IPAddress) -> bool:
    """The production rule, except that the test site's loopback address counts as a public host."""
    return address == ipaddress.ip_address("127.0.0.1") or is_public_address(address)


def test_local_paths_are_refused_unless_allowed(tmp_path: Path) -> None:
    photo = tmp_path / "secret.png"
    photo.write_bytes(_png())
    with pytest.raises(InputError, match=rf"image URL '{photo}' refused: .*does not read local files"):
        ImageURLReader().read(str(photo))
    assert ImageURLReader(allow_local=True).read(str(photo)).size == (24, 16)


def test_loopback_urls_are_refused_by_default_and_fetched_when_allowed(site: str) -> None:
    with pytest.raises(InputError, match=r"refused: 127\.0\.0\.1 is not a public address \(start the server with --allow-local-images"):
        ImageURLReader().read(f"{site}/photo.png")
    port = site.rsplit(":", 1)[1]
    with pytest.raises(InputError, match=r"refused: localhost resolves to .*, which is not a public address"):
        ImageURLReader().read(f"http://localhost:{port}/photo.png")
    assert ImageURLReader(allow_local=True).read(f"{site}/photo.png").size == (24, 16)


@pytest.mark.parametrize(
    "address", ["10.0.0.1", "172.16.5.4", "192.168.1.1", "169.254.169.254", "127.0.0.1", "0.0.0.0", "224.0.1.1",
                "240.0.0.1", "::1", "fe80::1", "fc00::1", "fec0::1", "ff02::1", "::ffff:10.0.0.1", "::"],
)
def test_non_public_addresses_are_not_public(address: str) -> None:
    assert not is_public_address(ipaddress.ip_address(address))


def test_public_addresses_are_public() -> None:
    assert is_public_address(ipaddress.ip_address("93.184.215.14"))
    assert is_public_address(ipaddress.ip_address("2606:4700::6810:85e5"))
    assert is_public_address(ipaddress.ip_address("::ffff:93.184.215.14"))


def test_redirects_are_followed_and_each_target_is_checked(site: str) -> None:
    reader = ImageURLReader(address_allowed=_site_is_public)
    assert reader.read(f"{site}/to?/photo.png").size == (24, 16)
    with pytest.raises(InputError, match=r"refused: 10\.0\.0\.7 is not a public address"):
        reader.read(f"{site}/to?http://10.0.0.7/photo.png")
    with pytest.raises(InputError, match=r"refused: 169\.254\.169\.254 is not a public address"):
        reader.read(f"{site}/to?http://169.254.169.254/latest/meta-data")
    with pytest.raises(InputError, match=r"refused: it redirects to 'file:.*/etc/passwd', not an http\(s\) URL"):
        reader.read(f"{site}/to?file:///etc/passwd")
    with pytest.raises(InputError, match=rf"image URL '{site}/loop' refused: more than 5 redirects"):
        reader.read(f"{site}/loop")


def test_oversized_downloads_are_refused_with_or_without_a_length(site: str) -> None:
    reader = ImageURLReader(allow_local=True, max_bytes=2**20)
    for path in ("/big", "/big-unsized"):
        with pytest.raises(InputError, match=rf"image URL '{site}{path}' refused: larger than 1 MiB"):
            reader.read(f"{site}{path}")


def test_slow_servers_time_out(site: str) -> None:
    reader = ImageURLReader(allow_local=True, timeout_s=0.5)
    started = time.monotonic()
    with pytest.raises(InputError, match=rf"image URL '{site}/slow' refused: 127\.0\.0\.1 did not answer within 0\.5 s"):
        reader.read(f"{site}/slow")
    with pytest.raises(InputError, match=rf"image URL '{site}/trickle' refused: the download took longer than 0\.5 s"):
        reader.read(f"{site}/trickle")
    assert time.monotonic() - started < 2.5


def test_a_missing_image_and_a_non_image_name_the_url(site: str) -> None:
    reader = ImageURLReader(allow_local=True)
    with pytest.raises(InputError, match=rf"image URL '{site}/gone.png' refused: .*answered 404"):
        reader.read(f"{site}/gone.png")
    with pytest.raises(InputError, match=rf"{site}/big is not an image"):
        reader.read(f"{site}/big")


def test_a_data_url_image_over_the_limit_is_refused() -> None:
    reader = ImageURLReader(max_bytes=100)
    data_url = "data:image/png;base64," + base64.b64encode(_png() + bytes(200)).decode()
    with pytest.raises(InputError, match=r"the data URL image is larger than"):
        reader.read(data_url)


def test_a_server_without_local_images_gives_no_hint_to_allow_them(site: str) -> None:
    with pytest.raises(InputError) as refused:
        ImageURLReader(local_hint=None).read(f"{site}/photo.png")
    assert str(refused.value).endswith("is not a public address")
