"""nginx serving files from a temporary folder on a loopback port: the reference for the feeds."""

from __future__ import annotations

import shutil
import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from loadtests.hubproc import free_port, wait_for

CONFIG = """\
worker_processes 1;
daemon off;
pid {root}/nginx.pid;
error_log {root}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 1000000;
    keepalive_timeout 65;
    types {{ application/xml xml; application/json json; }}
    client_body_temp_path {root}/tmp/body;
    proxy_temp_path {root}/tmp/proxy;
    fastcgi_temp_path {root}/tmp/fastcgi;
    uwsgi_temp_path {root}/tmp/uwsgi;
    scgi_temp_path {root}/tmp/scgi;
    server {{
        listen 127.0.0.1:{port};
        root {root}/www;
    }}
}}
"""


def nginx_binary() -> str:
    found = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    if found is None:
        raise FileNotFoundError("nginx is not installed: apt-get update && apt-get install -y nginx-light")
    return found


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


@contextmanager
def static_server(root: Path, files: dict[str, bytes]) -> Iterator[str]:
    """nginx (one worker, like the hub's one process) serving `files` (name → bytes); yields its base URL."""
    www = root / "www"
    for name, body in files.items():
        path = www / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body)
    (root / "tmp").mkdir(exist_ok=True)
    for folder in [root, *(p for p in root.rglob("*") if p.is_dir())]:
        folder.chmod(0o755)  # nginx workers run as another user when started by root
    for path in www.rglob("*"):
        if path.is_file():
            path.chmod(0o644)
    port = free_port()
    conf = root / "nginx.conf"
    conf.write_text(CONFIG.format(root=root, port=port), encoding="utf-8")
    process = subprocess.Popen(
        [nginx_binary(), "-c", str(conf), "-p", str(root)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        wait_for(lambda: process.poll() is None and _port_open(port), 10, 0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
