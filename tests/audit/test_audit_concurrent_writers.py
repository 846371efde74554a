"""Many writer processes appending at once, some rolling back: the trail keeps exactly the committed events.

Written against what ``event_record`` promises (an event lives and dies with its caller's transaction), not
against how appends are serialised, so it holds for any append mechanism that keeps that promise.
"""

import json
import subprocess
import sys
from collections import Counter

import pytest
from django.conf import settings

from apps.audit.models import AuditEvent
from apps.audit.verification import chain_verify
from tests.helpers import PROJECT_DIR, child_database_url, clean_environment, manage

WRITERS = 16
TRANSACTIONS_PER_WRITER = 24

# One writer process. It says "ready" once Django is set up and waits for the word to start, so all sixteen
# append at the same time rather than one after another as they finish starting. Each transaction is one of
# four shapes, shifted by the writer's number so that at any moment writers are doing different ones:
#   0  one event, committed
#   1  two events in one transaction, committed
#   2  one event committed, a second one recorded in a savepoint that is rolled back
#   3  one event recorded, then the whole transaction rolled back
# It prints the markers (object_id) it committed and those it rolled back, and when it started and ended.
WRITER_SCRIPT = """
import json, sys, time
import django
django.setup()
from django.db import transaction
from apps.audit.services import event_record

writer, rounds = int(sys.argv[1]), int(sys.argv[2])

class RolledBack(Exception):
    pass

def record(marker):
    event_record(action="test.concurrent", object_type="test.marker", object_id=marker, changes={"writer": writer})

print("ready", flush=True)
sys.stdin.readline()
committed, rolled_back, started = [], [], time.time()
for n in range(rounds):
    shape, marker = (n + writer) % 4, f"w{writer}-t{n}"
    try:
        with transaction.atomic():
            record(marker + "-a")
            if shape == 1:
                record(marker + "-b")
            elif shape == 2:
                try:
                    with transaction.atomic():
                        record(marker + "-savepoint")
                        raise RolledBack
                except RolledBack:
                    rolled_back.append(marker + "-savepoint")
            elif shape == 3:
                raise RolledBack
    except RolledBack:
        rolled_back.append(marker + "-a")
        continue
    committed += [marker + "-a"] + ([marker + "-b"] if shape == 1 else [])
print(json.dumps({"committed": committed, "rolled_back": rolled_back, "started": started, "ended": time.time()}))
"""


def _writer_environment() -> dict[str, str]:
    # The production-shaped settings (pooled PostgreSQL), pointed at this test's database.
    return clean_environment(
        DJANGO_SETTINGS_MODULE="project.settings.local",
        DATABASE_URL=child_database_url(),
        OPSDECK_DATA_DIR=str(settings.DATA_DIR),
        LOG_LEVEL="warning",
    )


def _run_writers(count: int, rounds: int) -> list[dict]:
    environment = _writer_environment()
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER_SCRIPT, str(index), str(rounds)],
            cwd=PROJECT_DIR,
            env=environment,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for index in range(count)
    ]
    try:
        for writer in writers:
            line = writer.stdout.readline()
            assert line.strip() == "ready", f"writer did not start: {line!r} {writer.stderr.read()}"
        for writer in writers:
            writer.stdin.write("go\n")
            writer.stdin.flush()
        reports = []
        for writer in writers:
            output, errors = writer.communicate(timeout=60)
            assert writer.returncode == 0, errors
            reports.append(json.loads(output.strip().splitlines()[-1]))
        return reports
    finally:
        for writer in writers:
            if writer.poll() is None:
                writer.kill()
                writer.wait()


@pytest.mark.django_db(transaction=True)
def test_sixteen_writer_processes_keep_every_committed_event_once_and_no_rolled_back_one():
    reports = _run_writers(WRITERS, TRANSACTIONS_PER_WRITER)

    # The writers really overlapped: every one started before any finished.
    assert max(report["started"] for report in reports) < min(report["ended"] for report in reports)

    committed = Counter(marker for report in reports for marker in report["committed"])
    rolled_back = {marker for report in reports for marker in report["rolled_back"]}
    # Each writer ran every shape: 6 of each per writer, so 16 * (6 + 12 + 6) committed, 16 * 12 rolled back.
    assert sum(committed.values()) == len(committed) == WRITERS * 24
    assert len(rolled_back) == WRITERS * 12
    in_trail = Counter(
        AuditEvent.objects.filter(action="test.concurrent").values_list("object_id", flat=True).iterator()
    )
    duplicated = {marker: times for marker, times in in_trail.items() if times > 1}
    assert not duplicated, f"{len(duplicated)} events recorded more than once, e.g. {sorted(duplicated)[:10]}"
    missing, kept = set(committed) - set(in_trail), rolled_back & set(in_trail)
    assert not missing, f"{len(missing)} committed events missing, e.g. {sorted(missing)[:10]}"
    assert not kept, f"{len(kept)} rolled-back events in the trail, e.g. {sorted(kept)[:10]}"
    assert in_trail == committed

    # Appends spread over several chains, and a transaction's events follow each other in its chain.
    events = {event.object_id: event for event in AuditEvent.objects.filter(action="test.concurrent")}
    assert len({event.chain for event in events.values()}) > 1
    for marker in committed:
        if marker.endswith("-b"):
            first, second = events[marker.removesuffix("-b") + "-a"], events[marker]
            assert (second.chain, second.prev_hash) == (first.chain, first.hash), marker

    report = chain_verify()
    assert report.ok, report.summary()
    assert report.verified == AuditEvent.objects.count()
    # The operator's door too: the CLI, in its own process, on the same database.
    verify = manage("audit", "verify", environment=_writer_environment())
    assert verify.returncode == 0, verify.stderr
    assert f"Verified {report.verified} events" in verify.stdout
