"""Debian's nginx as the reverse proxy in front of several carpool instances."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from cluster.postgres import Missing, free_port
from cluster.processes import wait_for_port

# As docs/deployment.md gives it, with two upstreams. A connection refused by an instance
# (it is restarting) is retried on the other: nothing was sent, so even a POST may be.
CONFIG = """
worker_processes 1;
daemon off;
pid {root}/nginx.pid;
error_log {root}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {root}/body;
    proxy_temp_path {root}/proxy;
    fastcgi_temp_path {root}/fastcgi;
    uwsgi_temp_path {root}/uwsgi;
    scgi_temp_path {root}/scgi;
    upstream carpool {{
{servers}
        keepalive 16;
    }}
    server {{
        listen 127.0.0.1:{port};
        client_header_timeout 10s;
        client_body_timeout 10s;
        client_max_body_size 1m;
        large_client_header_buffers 4 16k;
        keepalive_timeout 30s;
        location / {{
            proxy_pass http://carpool;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_read_timeout 60s;
            proxy_next_upstream error timeout;
        }}
        location /ws {{
            proxy_pass http://carpool;
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection "upgrade";
            proxy_read_timeout 1h;
        }}
    }}
}}
"""


def nginx_binary() -> str:
    """The nginx executable (Missing if not installed)."""
    found = shutil.which("nginx") or (
        "/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None
    )
    if found is None:
        raise Missing("nginx is not installed (apt-get install nginx; make test does)")
    return found


@contextmanager
def nginx(upstream_ports: list[int]) -> Iterator[int]:
    """nginx on a free port of 127.0.0.1, proxying to `upstream_ports`; its port."""
    binary = nginx_binary()
    with tempfile.TemporaryDirectory(prefix="carpool-nginx-") as tmp:
        root = Path(tmp)
        root.chmod(0o777)  # its workers run as nobody when started as root
        port = free_port()
        servers = "\n".join(
            f"        server 127.0.0.1:{p} max_fails=1 fail_timeout=2s;" for p in upstream_ports
        )
        conf = root / "nginx.conf"
        conf.write_text(CONFIG.format(root=root, servers=servers, port=port))
        command = [binary, "-e", str(root / "error.log"), "-p", str(root), "-c", str(conf)]
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        try:
            wait_for_port(port, process, what="nginx", log=root / "error.log")
            yield port
        finally:
            process.terminate()
            process.wait(timeout=10)
