"""The large API lists: a constant number of queries whatever the rows, orderings that page ties by id and stay on an
index, and a count bounded so that no page counts a whole table."""

import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.request import Request
from rest_framework.test import APIRequestFactory

from apps.audit.models import AuditEvent
from apps.audit.services import event_record
from apps.backups.models import Backup, BackupJob
from apps.compliance.models import Report
from apps.core.api.ordering import StableOrderingFilter
from apps.quantum.api.views import QuantumJobViewSet
from apps.quantum.models import QuantumJob
from apps.registry.models import InferenceJob, ModelVersion, RegisteredModel
from tests.helpers import api_error_detail

pytestmark = pytest.mark.django_db

# The queries of one list page: authentication and roles, the page (with its joins), the count, and the job
# list's queue figures. More than this means a query per row.
MAX_QUERIES = 12


def _quantum_jobs(owner, count: int, **fields) -> list[QuantumJob]:
    return QuantumJob.objects.bulk_create(
        QuantumJob(
            owner=owner,
            source="OPENQASM 2.0;",
            qasm_version=2,
            num_qubits=1,
            num_clbits=1,
            depth=1,
            shots=1,
            **fields,
        )
        for _ in range(count)
    )


def _inference_jobs(owner, count: int) -> None:
    model, _ = RegisteredModel.objects.get_or_create(name="sentiment", task="text-classification", owner=owner)
    version, _ = ModelVersion.objects.get_or_create(
        model=model, version=1, artifact="a.zip", sha256="0" * 64, size_bytes=1, status="ready", created_by=owner
    )
    InferenceJob.objects.bulk_create(
        InferenceJob(owner=owner, version=version, kind="batch", input_file="in.csv", input_format="csv")
        for _ in range(count)
    )


def _reports(owner, count: int) -> None:
    now = timezone.now()
    Report.objects.bulk_create(
        Report(owner=owner, kind="usage", format="csv", period_start=now - timedelta(days=1), period_end=now)
        for _ in range(count)
    )


def _backups(owner, count: int) -> None:
    backups = Backup.objects.bulk_create(
        Backup(
            compression="zstd",
            key_id="k",
            storage_name="backups",
            database_engine="postgresql",
            trigger="user",
            triggered_by=owner,
        )
        for _ in range(count)
    )
    BackupJob.objects.bulk_create(BackupJob(owner=owner, operation="verify", backup=backup) for backup in backups)


def _audit_events(owner, count: int) -> None:
    for number in range(count):
        event_record(action="api.write", actor=owner, object_type="quantum.quantumjob", object_id=str(number))


# (path, rows maker, reader fixture)
LISTS = [
    ("/api/v1/quantum/jobs/", _quantum_jobs, "operator_user"),
    ("/api/v1/quantum/jobs/", _quantum_jobs, "admin_user"),
    ("/api/v1/registry/inference-jobs/", _inference_jobs, "operator_user"),
    ("/api/v1/registry/inference-jobs/", _inference_jobs, "admin_user"),
    ("/api/v1/compliance/reports/", _reports, "compliance_user"),
    ("/api/v1/compliance/reports/", _reports, "admin_user"),
    ("/api/v1/backups/", _backups, "compliance_user"),
    ("/api/v1/backups/", _backups, "admin_user"),
    ("/api/v1/backups/jobs/", _backups, "admin_user"),
    ("/api/v1/audit/events/", _audit_events, "compliance_user"),
    ("/api/v1/audit/events/", _audit_events, "admin_user"),
]


def _queries_of_one_page(api_client, path: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = api_client.get(path, {"page_size": 5})
    assert response.status_code == 200, response.content
    return len(queries)


@pytest.mark.parametrize(("path", "make_rows", "reader"), LISTS, ids=[f"{p}-{r}" for p, _, r in LISTS])
def test_a_list_page_takes_the_same_few_queries_for_few_rows_and_many(
    api_client, request, django_assert_max_num_queries, path, make_rows, reader
):
    user = request.getfixturevalue(reader)
    api_client.force_authenticate(user)
    make_rows(user, 2)
    few = _queries_of_one_page(api_client, path)
    make_rows(user, 12)  # more than a page, so that the count is counted too

    with django_assert_max_num_queries(MAX_QUERIES):
        many = _queries_of_one_page(api_client, path)
    assert many <= few + 1  # the count query, once a next page exists


def _ids(response) -> list[int]:
    assert response.status_code == 200, response.content
    return [row["id"] for row in response.json()["results"]]


def _jobs_at_two_moments(owner) -> tuple[list[int], list[int]]:
    """Two jobs created at one moment, two at an earlier one: ids of the (older, newer) pairs."""
    jobs = _quantum_jobs(owner, 4)
    now = timezone.now()
    older, newer = [job.pk for job in jobs[:2]], [job.pk for job in jobs[2:]]
    QuantumJob.objects.filter(pk__in=older).update(created_at=now - timedelta(minutes=1))
    QuantumJob.objects.filter(pk__in=newer).update(created_at=now)
    return older, newer


def test_ties_are_broken_by_id_in_the_direction_of_the_ordering(api_client, operator_user):
    older, newer = _jobs_at_two_moments(operator_user)
    api_client.force_authenticate(operator_user)

    assert _ids(api_client.get("/api/v1/quantum/jobs/", {"ordering": "created_at"})) == [*older, *newer]
    assert _ids(api_client.get("/api/v1/quantum/jobs/", {"ordering": "-created_at"})) == [*newer[::-1], *older[::-1]]


def test_pages_of_a_tied_ordering_neither_repeat_nor_skip_rows(api_client, operator_user):
    older, newer = _jobs_at_two_moments(operator_user)
    api_client.force_authenticate(operator_user)

    pages = [
        _ids(api_client.get("/api/v1/quantum/jobs/", {"ordering": "-created_at", "page_size": 1, "page": number}))
        for number in range(1, 5)
    ]
    assert [ids[0] for ids in pages] == [*newer[::-1], *older[::-1]]


def test_count_above_the_limit_is_marked_as_not_exact_and_later_pages_stay_reachable(
    api_client, operator_user, monkeypatch
):
    monkeypatch.setattr("apps.core.paginators.EXACT_COUNT_LIMIT", 5)
    _quantum_jobs(operator_user, 9, status="completed")
    api_client.force_authenticate(operator_user)

    first = api_client.get("/api/v1/quantum/jobs/", {"page_size": 2, "status": "completed"}).json()
    assert (first["count"], first["count_exact"]) == (6, False)
    assert first["next"]
    fourth = api_client.get("/api/v1/quantum/jobs/", {"page_size": 2, "status": "completed", "page": 4}).json()
    assert len(fourth["results"]) == 2
    last = api_client.get("/api/v1/quantum/jobs/", {"page_size": 2, "status": "completed", "page": 5}).json()
    assert (last["count"], last["count_exact"], last["next"]) == (9, True, None)
    assert api_client.get("/api/v1/quantum/jobs/", {"page_size": 2, "page": 6}).status_code == 404


@pytest.mark.parametrize("path", ["/api/v1/quantum/jobs/", "/api/v1/registry/models/", "/api/v1/backups/"])
def test_a_page_beyond_the_deepest_start_is_refused_saying_so(api_client, admin_client, path):
    # Far past any table, and past the largest offset the database takes (2**63 - 1).
    response = admin_client.get(path, {"page": 852369774539230464, "page_size": 50})
    detail = api_error_detail(response, 404, "not_found")
    assert "Pages start at most 10,000,000 rows in" in detail
    assert admin_client.get(path, {"page": 200_001, "page_size": 50}).status_code == 404


def test_count_within_the_limit_is_exact(api_client, operator_user):
    _quantum_jobs(operator_user, 7)
    api_client.force_authenticate(operator_user)

    body = api_client.get("/api/v1/quantum/jobs/", {"page_size": 3}).json()

    assert (body["count"], body["count_exact"], len(body["results"])) == (7, True, 3)


def test_an_unfiltered_table_above_the_limit_gives_the_table_estimate(api_client, admin_user, monkeypatch):
    monkeypatch.setattr("apps.core.paginators.EXACT_COUNT_LIMIT", 5)
    _quantum_jobs(admin_user, 20)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE quantum_quantumjob")
    api_client.force_authenticate(admin_user)

    body = api_client.get("/api/v1/quantum/jobs/", {"page_size": 2}).json()

    assert (body["count"], body["count_exact"]) == (20, False)


def test_the_report_list_filters_by_format(api_client, compliance_user):
    _reports(compliance_user, 2)
    Report.objects.filter(pk=Report.objects.order_by("id").first().pk).update(format="pdf")
    api_client.force_authenticate(compliance_user)

    body = api_client.get("/api/v1/compliance/reports/", {"format": "pdf"}).json()

    assert [report["format"] for report in body["results"]] == ["pdf"]


# Each offered ordering of the biggest table in both directions, with the tie-break the API adds.
@pytest.mark.parametrize("ordering", ["id", "-id", "created_at", "-created_at", "finished_at", "-finished_at"])
def test_job_list_orderings_read_an_index_in_order_rather_than_sorting(ordering):
    request = Request(APIRequestFactory().get("/", {"ordering": ordering}))
    order = StableOrderingFilter().get_ordering(request, QuantumJob.objects.all(), QuantumJobViewSet())
    page = QuantumJob.objects.order_by(*order)[:50]
    with connection.cursor() as cursor:
        # A few rows: without these PostgreSQL would rightly read the table and sort; with them it sorts
        # only if no index gives the order.
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_sort = off")

    plan = page.explain()

    assert not _sorts(plan), plan


def _sorts(plan: str) -> bool:
    """Whether the plan has a Sort node (a Merge Append of partitions has a "Sort Key" but reads them in order)."""
    return re.search(r"^\s*(->\s+)?(Incremental )?Sort\s+\(", plan, re.MULTILINE) is not None


def _plan_of_the_page(api_client, path: str, query: dict, table: str) -> str:
    """PostgreSQL's plan for the page query the API ran, with sorting and table scans priced out as above."""
    with CaptureQueriesContext(connection) as queries:
        response = api_client.get(path, {**query, "page_size": 5})
    assert response.status_code == 200, response.content
    page = next(q["sql"] for q in queries if f'FROM "{table}"' in q["sql"] and "ORDER BY" in q["sql"])
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_sort = off")
        cursor.execute(f"EXPLAIN {page}")
        return "\n".join(row[0] for row in cursor.fetchall())


def test_a_job_list_narrowed_to_a_period_reads_that_period_in_its_index_newest_first(api_client, operator_user):
    older, _ = _jobs_at_two_moments(operator_user)
    api_client.force_authenticate(operator_user)
    middle = (timezone.now() - timedelta(seconds=30)).isoformat()

    assert _ids(api_client.get("/api/v1/quantum/jobs/", {"created_before": middle})) == older[::-1]
    plan = _plan_of_the_page(api_client, "/api/v1/quantum/jobs/", {"created_before": middle}, "quantum_quantumjob")

    # Ordered by id, the bound would be a Filter on rows walked from the newest: every newer row read first.
    assert "Index Cond: (created_at <" in plan, plan
    assert not _sorts(plan), plan


def test_an_explicit_ordering_wins_over_the_period_ordering(api_client, operator_user):
    jobs = _quantum_jobs(operator_user, 2)
    api_client.force_authenticate(operator_user)
    later = (timezone.now() + timedelta(minutes=1)).isoformat()

    ids = _ids(api_client.get("/api/v1/quantum/jobs/", {"created_before": later, "ordering": "id"}))

    assert ids == [job.pk for job in jobs]


def test_the_audit_trail_narrowed_to_a_period_pages_it_newest_first_on_its_index(api_client, compliance_user):
    _audit_events(compliance_user, 7)
    api_client.force_authenticate(compliance_user)
    until = (timezone.now() + timedelta(minutes=1)).isoformat()

    first = api_client.get("/api/v1/audit/events/", {"until": until, "page_size": 4}).json()
    second = api_client.get(first["next"]).json()
    plan = _plan_of_the_page(api_client, "/api/v1/audit/events/", {"until": until}, "audit_auditevent")

    newest = list(AuditEvent.objects.order_by("-id").values_list("id", flat=True)[:8])
    assert [row["id"] for row in first["results"] + second["results"]] == newest
    assert 'Index Cond: ("timestamp" <' in plan, plan
    assert not _sorts(plan), plan


def test_the_audit_trail_of_one_object_id_reads_its_index(api_client, compliance_user):
    _audit_events(compliance_user, 3)
    api_client.force_authenticate(compliance_user)

    plan = _plan_of_the_page(api_client, "/api/v1/audit/events/", {"object_id": "1"}, "audit_auditevent")

    assert "audit_object_id_recent" in plan, plan
    assert not _sorts(plan), plan


def test_the_inference_list_of_one_model_filters_by_its_version_ids(api_client, operator_user):
    _inference_jobs(operator_user, 2)
    api_client.force_authenticate(operator_user)

    assert len(_ids(api_client.get("/api/v1/registry/inference-jobs/", {"model": "sentiment"}))) == 2
    assert _ids(api_client.get("/api/v1/registry/inference-jobs/", {"model": "unknown"})) == []
    plan = _plan_of_the_page(
        api_client, "/api/v1/registry/inference-jobs/", {"model": "sentiment"}, "registry_inferencejob"
    )

    # Through the join PostgreSQL guessed how many jobs a model has; version ids it reads in its statistics.
    assert "name)::text = 'sentiment'" not in plan, plan
    assert "version_id = ANY" in plan or "version_id =" in plan, plan


def test_the_audit_trail_of_one_unusual_outcome_reads_its_index(api_client, compliance_user):
    _audit_events(compliance_user, 3)
    api_client.force_authenticate(compliance_user)

    plan = _plan_of_the_page(api_client, "/api/v1/audit/events/", {"outcome": "denied"}, "audit_auditevent")

    assert "audit_outcome_unusual" in plan, plan
    assert not _sorts(plan), plan
