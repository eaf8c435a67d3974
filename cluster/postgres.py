"""PostgreSQL servers from Debian's packages (built with SSL, unlike pgserver's), on 127.0.0.1:
a primary (TLS optional) and streaming replicas of it.

pgserver's binaries are built without OpenSSL, so the TLS tests and the local cluster use the
platform's PostgreSQL (`make test` installs the `postgresql` package when it is missing). The
servers run as the `postgres` system user when started as root (PostgreSQL refuses root).
"""

from __future__ import annotations

import datetime
import functools
import ipaddress
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

RUN_AS = "postgres"


def postgres_bin() -> Path | None:
    """The newest Debian PostgreSQL's bin directory, if installed."""
    root = Path("/usr/lib/postgresql")
    found = sorted(
        (p for p in root.glob("*/bin") if (p / "postgres").exists()),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
    )
    return found[-1] if found else None


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass(frozen=True)
class Tls:
    """A certificate authority made for one test, and a server certificate it signed."""

    ca: Path
    cert: Path
    key: Path


def make_tls(directory: Path, *, host: str = "localhost") -> Tls:
    """A fresh CA and a server certificate for `host` and 127.0.0.1, written to `directory`."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "carpool test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    names = [x509.DNSName(host), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    tls = Tls(directory / "ca.pem", directory / "server.crt", directory / "server.key")
    tls.ca.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    tls.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    tls.key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return tls


@dataclass
class DebianPostgres:
    """A running server: `port` on 127.0.0.1, database `carpool`, user `carpool` (trust)."""

    port: int
    data: Path
    bin: Path

    def url(self, query: str = "", *, host: str = "127.0.0.1") -> str:
        """A `postgresql+asyncpg://` URL of its database, with `query` (no leading ?)."""
        tail = f"?{query}" if query else ""
        return f"postgresql+asyncpg://carpool@{host}:{self.port}/carpool{tail}"

    @property
    def pid(self) -> int:
        """The postmaster's process id."""
        return int((self.data / "postmaster.pid").read_text().split()[0])


def as_server_user(command: list[str]) -> list[str]:
    return ["runuser", "-u", RUN_AS, "--", *command] if os.geteuid() == 0 else command


class Missing(RuntimeError):
    """A package the topology needs is not installed (the message says which)."""


def _require_binaries() -> Path:
    found = postgres_bin()
    if found is None:
        raise Missing("Debian's PostgreSQL is not installed (apt-get install postgresql)")
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(RUN_AS)
        except KeyError:
            raise Missing(f"running as root, and no {RUN_AS!r} user to run servers") from None
    return found


def _run_as_server_user(*command: str | Path | int, timeout: float) -> None:
    """Run `command` as the server's user; raises CalledProcessError if it fails."""
    subprocess.run(
        as_server_user([str(part) for part in command]),
        check=True,
        capture_output=True,
        timeout=timeout,
    )


def _stop(bin_dir: Path, data: Path) -> None:
    command = [str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"]
    subprocess.run(as_server_user(command), capture_output=True, timeout=60)


@contextmanager
def debian_postgres(*, tls: bool, hba: str | None = None) -> Iterator[tuple[DebianPostgres, Tls]]:
    """A fresh server (TLS on when `tls`: `hba` lines default to TLS-only connections), its
    database `carpool` made; stopped and deleted when the block ends."""
    bin_dir = _require_binaries()
    with tempfile.TemporaryDirectory(prefix="carpool-debian-pg-") as tmp:
        root = Path(tmp)
        tls_files = make_tls(root)
        data = root / "data"
        if os.geteuid() == 0:
            shutil.chown(root, RUN_AS)
            for path in (tls_files.ca, tls_files.cert, tls_files.key):
                shutil.chown(path, RUN_AS)
        tls_files.key.chmod(0o600)
        run = functools.partial(_run_as_server_user, timeout=60)
        run(bin_dir / "initdb", "-D", data, "-U", "carpool", "--auth=trust", "-E", "UTF8")
        lines = hba or (
            "local all all trust\n"
            + (
                "hostssl all all 127.0.0.1/32 trust\nhostnossl all all 0.0.0.0/0 reject\n"
                if tls
                else "host all all 127.0.0.1/32 trust\nhost replication all 127.0.0.1/32 trust\n"
            )
        )
        (data / "pg_hba.conf").write_text(lines)
        port = free_port()
        settings = [
            f"port={port}",
            "listen_addresses='127.0.0.1'",
            f"unix_socket_directories='{root}'",
            "fsync=off",
            "max_connections=100",
        ]
        if tls:
            settings += [
                "ssl=on",
                f"ssl_cert_file='{tls_files.cert}'",
                f"ssl_key_file='{tls_files.key}'",
            ]
        with (data / "postgresql.conf").open("a") as conf:
            conf.write("\n".join(settings) + "\n")
        run(bin_dir / "pg_ctl", "-D", data, "-l", root / "log", "-w", "-t", "60", "start")
        server = DebianPostgres(port, data, bin_dir)
        try:
            run(bin_dir / "createdb", "-h", root, "-p", port, "-U", "carpool", "carpool")
            yield server, tls_files
        finally:
            _stop(bin_dir, data)


@contextmanager
def replica_of(primary: DebianPostgres) -> Iterator[DebianPostgres]:
    """A hot standby streaming from `primary` (pg_basebackup), on a port of its own; stopped
    and deleted when the block ends."""
    bin_dir = primary.bin
    with tempfile.TemporaryDirectory(prefix="carpool-debian-replica-") as tmp:
        root = Path(tmp)
        if os.geteuid() == 0:
            shutil.chown(root, RUN_AS)
        data = root / "data"
        run = functools.partial(_run_as_server_user, timeout=120)
        source: list[str | int] = ["-h", "127.0.0.1", "-p", primary.port, "-U", "carpool"]
        run(bin_dir / "pg_basebackup", "-D", data, *source, "-R", "-X", "stream", "-c", "fast")
        port = free_port()
        with (data / "postgresql.conf").open("a") as conf:
            conf.write(f"port={port}\nunix_socket_directories='{root}'\nhot_standby=on\n")
        run(bin_dir / "pg_ctl", "-D", data, "-l", root / "log", "-w", "-t", "60", "start")
        try:
            yield DebianPostgres(port, data, bin_dir)
        finally:
            _stop(bin_dir, data)


def app_role_sql(role: str, *, statement_timeout: str = "15s") -> str:
    """What an operator runs once, as the owner, for a login whose sessions are read-only and
    bounded by default: the role carries the defaults (DB_SESSION_DEFAULTS=role), not the
    startup parameters a transaction-pooling PgBouncer refuses (docs/deployment.md)."""
    return f"""
CREATE ROLE {role} LOGIN;
ALTER ROLE {role} SET default_transaction_read_only = on;
ALTER ROLE {role} SET statement_timeout = '{statement_timeout}';
ALTER ROLE {role} SET lock_timeout = '{statement_timeout}';
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role};
GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO {role};
"""
