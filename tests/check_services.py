"""Stop early, with instructions, when the services the tests need do not answer."""

import os
import sys

import psycopg
import redis
from kombu import Connection

DATABASE_URL = os.environ.get("TEST_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/opsdeck")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/12")
# The broker tests add a virtual host of their own to this RabbitMQ (tests/brokers.py).
RABBITMQ_URL = os.environ.get("TEST_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672")
START_POSTGRES = "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start"
START_REDIS = (
    'redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no '
    "--dir /var/lib/redis --logfile /var/log/redis/ci.log"
)
START_RABBITMQ = "rabbitmq-server -detached && rabbitmqctl await_startup"


def postgres_problem() -> str | None:
    # The test database is created by the tests; the server's maintenance database must answer.
    server_url = DATABASE_URL.rsplit("/", 1)[0] + "/postgres"
    try:
        with psycopg.connect(server_url, connect_timeout=3) as connection:
            connection.execute("SELECT 1")
    except psycopg.Error as exc:
        return f"PostgreSQL at {server_url.split('@')[-1]} does not answer ({str(exc).strip().splitlines()[0]})."
    return None


def redis_problem() -> str | None:
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3).ping()
    except redis.RedisError as exc:
        return f"Redis at {REDIS_URL.split('@')[-1]} does not answer ({exc})."
    return None


def rabbitmq_problem() -> str | None:
    try:
        with Connection(RABBITMQ_URL + "/", connect_timeout=3) as connection:
            connection.ensure_connection(max_retries=0)
    except Exception as exc:  # kombu raises the transport's own errors as well as its own
        return f"RabbitMQ at {RABBITMQ_URL.split('@')[-1]} does not answer ({exc})."
    return None


def main() -> int:
    checks = (
        (postgres_problem(), START_POSTGRES),
        (redis_problem(), START_REDIS),
        (rabbitmq_problem(), START_RABBITMQ),
    )
    problems = [(problem, hint) for problem, hint in checks if problem]
    for problem, hint in problems:
        print(
            f"{problem}\n  Start it with: {hint}\n"
            "  or point TEST_DATABASE_URL / TEST_REDIS_URL / TEST_RABBITMQ_URL elsewhere."
        )
    if not problems:
        print("PostgreSQL, Redis and RabbitMQ answer.")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
