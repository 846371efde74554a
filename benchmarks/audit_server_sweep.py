"""The audit concurrency sweep seen from the server: the same append and plain INSERT statements driven by
pgbench, whose clients are C threads, so the figures show what PostgreSQL does with N concurrent writers rather
than what N Python processes cost the machine (on 2 cores, 64 Python writers slow even plain INSERTs down).

Each round is BEGIN, one statement, COMMIT per transaction, as in ``benchmarks/audit.py``'s sweep; the plain
INSERT goes to a table shaped like the events table (same indexes and partitions), with no chain and no lock.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from pathlib import Path

# One event's text, shaped like a sign-in event; request_id differs per transaction, as a request id does.
_CONTENT = (
    "'dmitri.larsen', '192.168.186.4', 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36', "
    "'auth.login.succeeded', 'accounts.user', '245', 'dmitri.larsen', "
    '\'{"path":"/api/v1/accounts/login/","method":"POST"}\', md5(random()::text), \'success\''
)
CHAINED_SCRIPT = f"BEGIN;\nSELECT * FROM audit_append(NULL, {_CONTENT}, :chains);\nCOMMIT;\n"


def plain_script(table: str) -> str:
    columns = (
        "timestamp, actor_username, ip, user_agent, action, object_type, object_id, object_repr, changes_text, "
        "request_id, outcome, prev_hash, hash"
    )
    values = f"clock_timestamp(), {_CONTENT}, repeat('0', 64), encode(sha256(random()::text::bytea), 'hex')"
    return f"BEGIN;\nINSERT INTO {table} ({columns}) VALUES ({values});\nCOMMIT;\n"


def available() -> bool:
    return shutil.which("pgbench") is not None


def transactions_per_second(
    script: str, clients: int, seconds: float, *, host: str, port: int, user: str, database: str, chains: int
) -> float:
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "round.sql"
        path.write_text(script)
        command = [
            "pgbench", "-h", host, "-p", str(port), "-U", user, "-n", "-c", str(clients), "-j", str(min(clients, 2)),
            "-T", str(max(1, round(seconds))), "-D", f"chains={chains}", "-f", str(path), database,
        ]  # fmt: skip
        output = subprocess.run(command, capture_output=True, text=True, check=True, timeout=seconds + 120).stdout
    match = re.search(r"^tps = ([0-9.]+)", output, re.MULTILINE)
    if match is None:
        raise RuntimeError(f"pgbench printed no tps:\n{output}")
    return float(match.group(1))
