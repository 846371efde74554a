"""The rehearsal's ``db`` host: a PostgreSQL cluster of its own (run as the ``postgres`` user) and a Redis."""

from __future__ import annotations

import secrets
import shutil
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

import psycopg
import redis
from psycopg import sql

from .network import SUBNET, Host
from .processes import HostProcess

DATABASE_NAME = "opsdeck"
APPLICATION_ROLE = "opsdeck"
POSTGRES_PORT = 5432
REDIS_PORT = 6379


@dataclass
class DatabaseHost:
    host: Host
    postgres: HostProcess
    redis: HostProcess
    password: str

    @property
    def database_url(self) -> str:
        return f"postgres://{APPLICATION_ROLE}:{self.password}@{self.host.address}:{POSTGRES_PORT}/{DATABASE_NAME}"

    @property
    def redis_url(self) -> str:
        return f"redis://{self.host.address}:{REDIS_PORT}/0"

    def stop(self) -> None:
        for process in (self.redis, self.postgres):
            process.stop()


def _as_postgres(*argv: str) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *argv]


def _postgres_binary(name: str) -> str:
    found = shutil.which(name) or next(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), None)
    if found is None:
        raise RuntimeError(f"{name} not found: install the PostgreSQL server package")
    return str(found)


def _initdb(directory: Path) -> None:
    """A fresh cluster in ``directory``: local connections trusted, the hosts' network with a password."""
    directory.mkdir(mode=0o700)
    shutil.chown(directory, "postgres", "postgres")
    data = directory / "data"
    subprocess.run(
        _as_postgres(_postgres_binary("initdb"), "-D", str(data), "-U", "postgres", "-E", "UTF8", "--no-sync"),
        capture_output=True,
        check=True,
        timeout=120,
    )
    with (data / "pg_hba.conf").open("a") as rules:
        rules.write(f"host all all {SUBNET}.0/24 scram-sha-256\n")


def database_host_start(host: Host, directory: Path) -> DatabaseHost:
    """Start PostgreSQL and Redis on ``host``, listening on its address only; create the application's role."""
    _initdb(directory / "postgres")
    postgres = HostProcess(
        host,
        "postgres",
        _as_postgres(
            *(_postgres_binary("postgres"), "-D", str(directory / "postgres" / "data")),
            *("-k", str(directory / "postgres"), "-h", host.address, "-p", str(POSTGRES_PORT)),
            # A rehearsal's data need not survive a crash of this machine.
            *("-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"),
        ),
        log=directory / "postgres.log",
        stop_signal=signal.SIGINT,  # fast shutdown
    )
    (directory / "redis").mkdir()
    redis_server = HostProcess(
        host,
        "redis",
        [
            *("redis-server", "--bind", host.address, "--port", str(REDIS_PORT)),
            *("--save", "", "--appendonly", "no", "--dir", str(directory / "redis")),
            # Reached from the other hosts without a password: the rehearsal network is closed.
            *("--protected-mode", "no"),
        ],
        log=directory / "redis.log",
    )
    database = DatabaseHost(host, postgres, redis_server, password=secrets.token_urlsafe(24))
    superuser = f"host={directory / 'postgres'} port={POSTGRES_PORT} user=postgres dbname=postgres"
    postgres.wait_until(lambda: psycopg.connect(superuser, connect_timeout=2).close() is None, "accepting connections")
    with psycopg.connect(superuser, autocommit=True) as connection:
        role, name = sql.Identifier(APPLICATION_ROLE), sql.Identifier(DATABASE_NAME)
        connection.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(role, sql.Literal(database.password)))
        connection.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(name, role))
        # PostgreSQL 15 lets only a superuser put an unregistered parameter in a function's SET clause, which
        # audit/0008's archive function does (README, "Database roles and the append-only audit trail").
        connection.execute(sql.SQL("GRANT SET ON PARAMETER opsdeck.audit_archive TO {}").format(role))
    redis_server.wait_until(lambda: redis.Redis.from_url(database.redis_url, socket_timeout=2).ping(), "answering")
    return database
