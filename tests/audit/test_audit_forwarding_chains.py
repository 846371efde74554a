"""Forwarding under parallel chains: ids commit out of order, and no event is skipped or sent twice for it.

An append in an open transaction holds its chain; an append on another chain gets a higher id and may commit
first. The transactions here run in threads, each on a database connection of its own, so the commits really
interleave on the server.
"""

import random
import threading
import time
import uuid

import psycopg
import pytest
from django.db import connection, transaction

from apps.audit import forwarding
from apps.audit.forwarding import audit_forward, sink_forward, sink_lag, sink_save
from apps.audit.hashing import event_hash
from apps.audit.models import AuditEvent, AuditSink
from apps.audit.selectors import MAX_CHAINS, UnsettledSequenceError, settled_event_id
from apps.audit.services import CHAIN_LOCK_KEY, event_record

WAIT_SECONDS = 30


class _RolledBack(Exception):
    pass


class OpenTransaction:
    """Records ``count`` events in a transaction on a connection of its own, and keeps it open until ``end``."""

    def __init__(self, count: int = 1, action: str = "test.open"):
        self.count, self.action = count, action
        self.events: list[AuditEvent] = []
        self.error: BaseException | None = None
        self._recorded, self._ended = threading.Event(), threading.Event()
        self._commit = True
        self._thread = threading.Thread(target=self._run, name="open-transaction", daemon=True)

    def __enter__(self) -> "OpenTransaction":
        self._thread.start()
        assert self._recorded.wait(WAIT_SECONDS), "the transaction did not record its events"
        if self.error is not None:
            raise self.error
        return self

    def __exit__(self, *exc_info) -> None:
        if self._thread.is_alive():
            self.end(commit=False)

    @property
    def chain(self) -> int:
        return self.events[0].chain

    def end(self, *, commit: bool) -> None:
        self._commit = commit
        self._ended.set()
        self._thread.join(WAIT_SECONDS)
        assert not self._thread.is_alive(), "the transaction did not end"
        if self.error is not None:
            raise self.error

    def _run(self) -> None:
        try:
            with transaction.atomic():
                self.events = [event_record(action=self.action, object_id=str(n)) for n in range(self.count)]
                self._recorded.set()
                self._ended.wait(WAIT_SECONDS)
                if not self._commit:
                    raise _RolledBack
        except _RolledBack:
            pass
        except BaseException as exc:
            self.error = exc
            self._recorded.set()
        finally:
            connection.close()  # this thread's own


def _committed_ids() -> list[int]:
    return list(AuditEvent.objects.order_by("id").values_list("id", flat=True))


def _newest_on_chain(chain: int) -> int:
    return AuditEvent.objects.filter(chain=chain).order_by("-id").values_list("id", flat=True).first() or 0


def _assert_each_committed_event_once_in_id_order(documents: list[dict]) -> None:
    ids = [document["id"] for document in documents]
    assert len(ids) == len(set(ids)), "an event was sent twice"
    assert ids == _committed_ids()
    chains = dict(AuditEvent.objects.values_list("id", "chain"))
    last_hash: dict[int, str] = {}
    for document in documents:  # what the collector received is what the hash covers, linked within its chain
        assert event_hash(document) == document["hash"]
        assert document["chain"] == chains[document["id"]]
        if document["chain"] in last_hash:
            assert document["prev_hash"] == last_hash[document["chain"]]
        last_hash[document["chain"]] = document["hash"]


def _other_connection(dbname: str | None = None) -> psycopg.Connection:
    database = connection.settings_dict
    return psycopg.connect(host=database["HOST"], port=database["PORT"], user=database["USER"],
                           dbname=dbname or database["NAME"], autocommit=True)  # fmt: skip


@pytest.fixture
def sink(listener):
    return sink_save(sink=AuditSink(name=f"siem-{uuid.uuid4().hex[:8]}", url=f"syslog+tcp://127.0.0.1:{listener.port}"))


@pytest.fixture
def short_wait(monkeypatch):
    """A run waits this long at most for events held back by a transaction still open."""
    monkeypatch.setattr(forwarding, "HELD_BACK_WAIT_SECONDS", 0.2)
    return 0.2


# --- settled_event_id


@pytest.mark.django_db(transaction=True)
def test_settled_id_is_the_newest_id_handed_out_when_no_append_is_open():
    events = [event_record(action="test.committed") for _ in range(3)]
    assert settled_event_id() == events[-1].id

    with transaction.atomic():
        rolled_back = event_record(action="test.rolled_back")
        transaction.set_rollback(True)
    # The rolled-back id will never exist: nothing waits for it.
    assert settled_event_id() == rolled_back.id > events[-1].id


@pytest.mark.django_db(transaction=True)
def test_settled_id_stops_below_an_open_transaction_holding_a_lower_id_on_another_chain():
    earlier = [event_record(action="test.committed") for _ in range(2)]
    with OpenTransaction(count=2) as open_one:
        later = event_record(action="test.committed.later")  # chain 0 is held: another chain, a higher id
        assert open_one.chain == 0
        assert later.chain != 0
        assert earlier[-1].id < open_one.events[0].id < later.id

        assert settled_event_id() == _newest_on_chain(0) == earlier[-1].id

        open_one.end(commit=True)
    assert settled_event_id() == later.id


@pytest.mark.django_db(transaction=True)
def test_a_held_chain_without_events_settles_nothing():
    event_record(action="test.committed")
    with OpenTransaction() as first, OpenTransaction() as second:
        assert first.chain == 0
        assert second.chain != 0
        # Nothing of the second's chain is committed, so nothing bounds the ids its holder numbers (it might have
        # numbered one before anything on another chain committed): nothing is settled until it ends.
        assert settled_event_id() == 0
        second.end(commit=True)
        assert settled_event_id() == _newest_on_chain(0) < first.events[0].id
        first.end(commit=True)
    assert settled_event_id() == _committed_ids()[-1]


@pytest.mark.django_db(transaction=True)
def test_only_chain_locks_of_this_database_count_including_chains_above_the_setting(settings):
    newest = event_record(action="test.committed").id
    high, low = divmod(CHAIN_LOCK_KEY + 5, 1 << 32)
    with _other_connection() as other, _other_connection("postgres") as elsewhere:
        elsewhere.execute("SELECT pg_advisory_lock(%s)", [CHAIN_LOCK_KEY + 5])  # chain 5's key, another database
        other.execute("SELECT pg_advisory_lock(%s, %s)", [high, low])  # the same numbers as two int4 keys
        other.execute("SELECT pg_advisory_lock(%s)", [CHAIN_LOCK_KEY - 1])  # the checkpoint lock
        other.execute("SELECT pg_advisory_lock(%s)", [CHAIN_LOCK_KEY + MAX_CHAINS])
        assert settled_event_id() == newest

        # A process configured for more chains appends on chain 10 (this one allows 4): it counts.
        settings.AUDIT_CHAINS = 4
        other.execute("SELECT pg_advisory_lock(%s)", [CHAIN_LOCK_KEY + 10])
        assert settled_event_id() == 0
        other.execute("SELECT pg_advisory_unlock_all()")
        assert settled_event_id() == newest


@pytest.mark.django_db
def test_an_id_sequence_that_caches_ids_is_refused_by_name():
    event_record(action="test.committed")
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_get_serial_sequence('audit_auditevent', 'id')")
        sequence = cursor.fetchone()[0]
        cursor.execute(f"ALTER SEQUENCE {sequence} CACHE 20")
    try:
        with pytest.raises(UnsettledSequenceError, match=rf"{sequence} caches 20 ids .* CACHE 1"):
            settled_event_id()
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"ALTER SEQUENCE {sequence} CACHE 1")


# --- Forwarding


@pytest.mark.django_db(transaction=True)
def test_forwarding_waits_for_a_lower_id_still_open_and_then_sends_it(listener, sink, short_wait):
    event_record(action="test.committed")
    with OpenTransaction(count=2) as open_one:
        later = [event_record(action="test.committed.later") for _ in range(2)]
        assert later[0].chain != open_one.chain
        assert later[0].id > open_one.events[-1].id
        before_open = [event_id for event_id in _committed_ids() if event_id < open_one.events[0].id]

        started = time.monotonic()
        assert audit_forward() == f"{sink.name}: {len(before_open)} events sent"
        assert time.monotonic() - started >= short_wait  # it waited a little for the open transaction

        sink.refresh_from_db()
        assert sink.cursor == before_open[-1]  # not past the open transaction's events
        assert [document["id"] for document in listener.documents] == before_open
        assert sink_lag(sink)[0] == 2  # the two later events wait, and say so
        open_one.end(commit=True)

    assert audit_forward() == f"{sink.name}: 4 events sent"

    _assert_each_committed_event_once_in_id_order(listener.documents)
    sink.refresh_from_db()
    assert sink.cursor == later[-1].id
    assert sink_lag(sink) == (0, 0.0)


@pytest.mark.django_db(transaction=True)
def test_a_rolled_back_lower_id_holds_forwarding_back_only_while_open(listener, sink, short_wait):
    with OpenTransaction() as open_one:
        later = event_record(action="test.committed.later")
        assert later.id > open_one.events[0].id
        audit_forward()
        assert AuditSink.objects.get().cursor < open_one.events[0].id
        open_one.end(commit=False)

    audit_forward()

    _assert_each_committed_event_once_in_id_order(listener.documents)
    assert AuditSink.objects.get().cursor == later.id


@pytest.mark.django_db(transaction=True)
def test_a_run_waits_for_a_short_transaction_holding_a_lower_id_and_sends_everything(listener, sink):
    with OpenTransaction() as open_one:
        later = event_record(action="test.committed.later")
        # The open transaction commits a moment after the run has started.
        committer = threading.Timer(0.3, open_one.end, kwargs={"commit": True})
        committer.start()

        sent, error = sink_forward(sink.pk)

        committer.join()
    assert (sent, error) == (len(_committed_ids()), "")
    _assert_each_committed_event_once_in_id_order(listener.documents)
    assert AuditSink.objects.get().cursor == later.id


WRITERS = 4
TRANSACTIONS_PER_WRITER = 12


def _writer(number: int, failures: list) -> None:
    # Transactions of one to three events, held open a little, one in four rolled back: commits interleave
    # across the chains while the forwarder runs.
    chance = random.Random(number)  # noqa: S311 - sleeps, not secrets
    try:
        for n in range(TRANSACTIONS_PER_WRITER):
            try:
                with transaction.atomic():
                    for part in range(1 + n % 3):
                        event_record(action="test.writer", object_id=f"w{number}-t{n}-{part}")
                        time.sleep(chance.uniform(0, 0.02))
                    if n % 4 == 3:
                        raise _RolledBack
            except _RolledBack:
                pass
    except BaseException as exc:
        failures.append(exc)
    finally:
        connection.close()


@pytest.mark.django_db(transaction=True)
def test_concurrent_writers_on_parallel_chains_every_committed_event_forwarded_once_in_id_order(
    listener, sink, settings
):
    settings.AUDIT_FORWARD_BATCH_SIZE = 5
    failures: list[BaseException] = []
    writers = [threading.Thread(target=_writer, args=(n, failures), daemon=True) for n in range(WRITERS)]
    for writer in writers:
        writer.start()
    sent_while_writing = 0
    while any(writer.is_alive() for writer in writers):
        sent, error = sink_forward(sink.pk)
        assert error == ""
        sent_while_writing += sent
    for writer in writers:
        writer.join(WAIT_SECONDS)
    assert not failures, failures

    while sink_forward(sink.pk)[0]:  # each run stops at a short batch: go on until one sends nothing
        pass

    assert sent_while_writing > 0
    assert AuditEvent.objects.filter(action="test.writer").values("chain").distinct().count() > 1
    _assert_each_committed_event_once_in_id_order(listener.documents)
    assert not AuditEvent.objects.filter(object_id__regex=r"-t(3|7|11)-").exists()  # rolled back, never sent
    assert AuditSink.objects.get().cursor == _committed_ids()[-1]
