"""A secured cluster for the credential tests: nginx with basic auth in front of the session's real node.

The local node runs without its security plugin, so nginx plays the cluster's
security layer: a request without credentials, or with wrong ones, gets 401;
``visitor`` is a known user who may not read any index (403) but may ask ``GET /``.
Without nginx the tests that need it are skipped with ``NGINX_MISSING``, unless
``SSI_REQUIRE_NGINX=1`` (CI) makes that a failure.
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from serve_support import answers_within, free_port

REQUIRE_NGINX_ENV = "SSI_REQUIRE_NGINX"
NGINX_MISSING = "nginx is not installed (apt-get install -y nginx): it stands in for a secured cluster"

USERS = {"ssi-server": "server-secret", "alice": "alice-secret", "visitor": "visitor-secret"}
"""Who the secured cluster knows: the server's own account, a client, and a client who may read no index."""

_CONFIG = """\
daemon off;
master_process off;
pid {folder}/nginx.pid;
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {folder}/body;
    proxy_temp_path {folder}/proxy;
    fastcgi_temp_path {folder}/fastcgi;
    uwsgi_temp_path {folder}/uwsgi;
    scgi_temp_path {folder}/scgi;
    client_max_body_size 0;
    map $remote_user $forbidden {{ default 0; visitor 1; }}
    server {{
        listen 127.0.0.1:{port};
        auth_basic "cluster";
        auth_basic_user_file {folder}/htpasswd;
        location = / {{ proxy_pass {upstream}; }}
        location / {{
            if ($forbidden) {{ return 403; }}
            proxy_pass {upstream};
        }}
    }}
}}
"""


@dataclass(frozen=True)
class SecuredCluster:
    url: str

    @staticmethod
    def auth(user: str) -> tuple[str, str]:
        return user, USERS[user]


def nginx_binary() -> str:
    """nginx's path; skips the test without it (fails under ``SSI_REQUIRE_NGINX=1``)."""
    found = shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if os.access(p, os.X_OK)), None)
    if found is None:
        if os.environ.get(REQUIRE_NGINX_ENV) == "1":
            pytest.fail(f"{NGINX_MISSING}; {REQUIRE_NGINX_ENV}=1 requires it")
        pytest.skip(NGINX_MISSING)
    return found


@contextmanager
def secured_cluster(upstream: str, folder: Path) -> Iterator[SecuredCluster]:
    """nginx on a free loopback port, asking ``USERS`` for basic auth and passing the rest to ``upstream``."""
    binary = nginx_binary()
    (folder / "htpasswd").write_text("".join(f"{user}:{_ssha(password)}\n" for user, password in USERS.items()))
    port = free_port()
    config = folder / "nginx.conf"
    config.write_text(_CONFIG.format(folder=folder, port=port, upstream=upstream))
    process = subprocess.Popen([binary, "-p", str(folder), "-c", str(config), "-e", str(folder / "error.log")],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_listening(url, process, folder / "error.log")
        yield SecuredCluster(url)
    finally:
        process.terminate()
        process.wait(timeout=30)


def _ssha(password: str) -> str:
    """nginx's salted SHA-1 password scheme: base64(sha1(password + salt) + salt)."""
    salt = secrets.token_bytes(8)
    return "{SSHA}" + base64.b64encode(hashlib.sha1(password.encode() + salt).digest() + salt).decode()


def _wait_until_listening(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    if answers_within(url, process, 30, interval=0.05):
        return
    process.kill()
    process.wait()
    raise AssertionError(f"nginx did not start:\n{log.read_text() if log.exists() else '(no log)'}")
