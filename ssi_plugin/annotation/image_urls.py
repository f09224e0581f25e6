"""The images named by a chat request's ``image_url`` parts, read without trusting whoever sent it.

``serve-model`` answers anyone who can reach it. Read naively, an image URL
would let a client open image files on the server's disk, or make the server
fetch addresses only it can reach (a cloud metadata service, an admin page on
localhost, the internal network). So by default:

- a ``data:`` URL is decoded; anything that is not ``data:`` or http(s) (a local
  path) is refused;
- an http(s) URL is fetched only when every address its host resolves to is
  public, and the connection goes to an address that was checked (a second DNS
  answer cannot swap in another); redirects are followed by hand, at most
  ``max_redirects``, each target checked the same way;
- a ``data:`` image may hold at most ``max_bytes``; a download stops at ``max_bytes`` and at ``timeout_s`` (per connect and read,
  and for the whole download).

``allow_local=True`` (``serve-model --allow-local-images``) lifts the first two
rules for a server whose clients are trusted; the limits stay. Every refusal is
an ``InputError`` naming the URL and the reason.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import ipaddress
import socket
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from ssi_plugin.annotation.images import decode_image, open_image
from ssi_plugin.errors import AnnotationError, InputError

if TYPE_CHECKING:
    import httpx
    from PIL import Image

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

MAX_IMAGE_BYTES = 20 * 2**20
TIMEOUT_S = 10.0
MAX_REDIRECTS = 5
_REDIRECTS = {301, 302, 303, 307, 308}


def is_public_address(address: IPAddress) -> bool:
    """True for a globally routable unicast address: not loopback, private, link-local, multicast, reserved..."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_global and not (
        address.is_loopback
        or address.is_private
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
        or (isinstance(address, ipaddress.IPv6Address) and address.is_site_local)
    )


class ImageURLReader:
    """Reads the image of an ``image_url`` part under the rules above.

    ``address_allowed`` decides which resolved addresses may be fetched when
    ``allow_local`` is off (default: public ones only); tests pass a rule that
    also admits their loopback server. ``local_hint`` ends a refusal of a local
    address: how this server's operator allows them (None: it cannot).
    """

    def __init__(
        self,
        *,
        allow_local: bool = False,
        max_bytes: int = MAX_IMAGE_BYTES,
        timeout_s: float = TIMEOUT_S,
        max_redirects: int = MAX_REDIRECTS,
        address_allowed: Callable[[IPAddress], bool] = is_public_address,
        local_hint: str | None = "start the server with --allow-local-images to allow it",
    ) -> None:
        self.allow_local = allow_local
        self.max_bytes = max_bytes
        self.timeout_s = timeout_s
        self.max_redirects = max_redirects
        self.address_allowed = address_allowed
        self.local_hint = local_hint

    def read(self, url: str) -> Image.Image:
        """The RGB image at ``url``; ``InputError`` naming the URL when it is refused or unusable."""
        try:
            if url.startswith("data:"):
                data = _data_url_bytes(url)
                if len(data) > self.max_bytes:
                    raise InputError(f"the data URL image is larger than {self.max_bytes / 2**20:g} MiB")
                return decode_image(data, "the data URL image")
            if url.startswith(("http://", "https://")):
                return decode_image(self._download(url), url)
            if not self.allow_local:
                raise InputError(
                    f"image URL {url!r} refused: not a data: or http(s) URL, and this server does not read local files "
                    "(start it with --allow-local-images to allow them)"
                )
            return open_image(url)
        except AnnotationError as exc:
            raise InputError(exc.detail) from None

    def _download(self, url: str) -> bytes:
        import httpx

        deadline = time.monotonic() + self.timeout_s
        # trust_env=False: a proxy from the environment would connect to addresses that were never checked.
        with httpx.Client(timeout=self.timeout_s, trust_env=False) as client:
            try:
                target = httpx.URL(url)
                for _ in range(self.max_redirects + 1):
                    with contextlib.closing(self._send(client, target, url)) as response:
                        if response.status_code in _REDIRECTS and "location" in response.headers:
                            target = target.join(response.headers["location"])
                            if target.scheme not in ("http", "https"):
                                raise _refused(url, f"it redirects to {str(target)!r}, not an http(s) URL")
                            continue
                        if response.status_code >= 400:
                            raise _refused(url, f"{target} answered {response.status_code} {response.reason_phrase}")
                        return self._body(response, url, deadline)
            except httpx.InvalidURL as exc:
                raise _refused(url, f"not a valid URL: {exc}") from None
        raise _refused(url, f"more than {self.max_redirects} redirects")

    def _send(self, client: httpx.Client, target: httpx.URL, url: str) -> httpx.Response:
        """The streamed answer of ``target``, connected to one of its checked addresses (pinned, as DNS may change)."""
        import httpx

        addresses = self._checked_addresses(target, url)
        headers = {"Host": target.netloc.decode("ascii")}
        extensions = {"sni_hostname": target.raw_host.decode("ascii")} if target.scheme == "https" else {}
        problem = f"{target.host} has no address"
        for address in addresses:
            request = client.build_request("GET", target.copy_with(host=str(address)), headers=headers, extensions=extensions)
            try:
                return client.send(request, stream=True)
            except httpx.TimeoutException:
                raise _refused(url, f"{target.host} did not answer within {self.timeout_s:g} s") from None
            except httpx.HTTPError as exc:
                problem = f"cannot fetch {target}: {exc}"
        raise _refused(url, problem)

    def _checked_addresses(self, target: httpx.URL, url: str) -> list[IPAddress]:
        host = target.raw_host.decode("ascii")
        try:
            infos = socket.getaddrinfo(host, target.port or (443 if target.scheme == "https" else 80), type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError) as exc:
            raise _refused(url, f"cannot resolve {host!r}: {exc}") from None
        addresses = list(dict.fromkeys(ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos))
        if not self.allow_local:
            for address in addresses:
                if not self.address_allowed(address):
                    which = str(address) if host.strip("[]") == str(address) else f"{host} resolves to {address}, which"
                    hint = f" ({self.local_hint})" if self.local_hint else ""
                    raise _refused(url, f"{which} is not a public address{hint}")
        return addresses

    def _body(self, response: httpx.Response, url: str, deadline: float) -> bytes:
        import httpx

        limit = f"larger than {self.max_bytes / 2**20:g} MiB"
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_bytes:
            raise _refused(url, limit)
        data = bytearray()
        try:
            for chunk in response.iter_bytes():
                data += chunk
                if len(data) > self.max_bytes:
                    raise _refused(url, limit)
                if time.monotonic() > deadline:
                    raise _refused(url, f"the download took longer than {self.timeout_s:g} s")
        except httpx.TimeoutException:
            raise _refused(url, f"the download stalled for {self.timeout_s:g} s") from None
        except httpx.HTTPError as exc:
            raise _refused(url, f"the download failed: {exc}") from None
        return bytes(data)


def _data_url_bytes(url: str) -> bytes:
    header, _, payload = url.partition(",")
    if ";base64" not in header:
        raise InputError("an image data URL must be base64-encoded")
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise InputError("the image data URL is not valid base64") from None


def _refused(url: str, reason: str) -> InputError:
    return InputError(f"image URL {url!r} refused: {reason}")
