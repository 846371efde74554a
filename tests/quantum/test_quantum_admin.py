"""Quantum jobs in the admin: a cheap list, a read-only detail with the pictures, cancel and re-run; the renderings."""

import time
import xml.etree.ElementTree as ET
from datetime import timedelta

import pytest
from django.contrib.auth.models import Group, Permission
from django.contrib.messages import get_messages
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from apps.audit.models import AuditEvent
from apps.core.paginators import EstimatedCountPaginator
from apps.jobs.choices import JobStatus
from apps.quantum import admin as quantum_admin
from apps.quantum.choices import SimulationMethod
from apps.quantum.models import QuantumJob
from apps.quantum.rendering import (
    MAX_DRAWING_CHARS,
    MAX_DRAWN_SOURCE_CHARS,
    circuit_text_drawing,
    histogram_svg,
)
from apps.quantum.services import JobSpec, job_submit, jobs_submit_batch
from tests.factories import UserFactory
from tests.mfa import otp_force_login, staff_force_login

CHANGELIST_URL = "/admin/quantum/quantumjob/"
SVG = "{http://www.w3.org/2000/svg}"
GHZ5 = (
    'OPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[5];\ncreg c[5];\nh q[0];\n'
    "cx q[0],q[1];\ncx q[1],q[2];\ncx q[2],q[3];\ncx q[3],q[4];\nmeasure q -> c;\n"
)
BELL3 = 'OPENQASM 3.0;\ninclude "stdgates.inc";\nqubit[2] q;\nbit[2] c;\nh q[0];\ncx q[0], q[1];\nc = measure q;\n'


def _chain_qasm2(qubits: int, layers: int = 1) -> str:
    """A CX chain over ``qubits`` repeated ``layers`` times, measured: depth and size grow with both."""
    chain = "".join(f"cx q[{i}],q[{i + 1}];\n" for i in range(qubits - 1))
    return (
        f'OPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[{qubits}];\ncreg c[{qubits}];\nh q[0];\n'
        f"{chain * layers}measure q -> c;\n"
    )


def _listed_ids(response) -> set[int]:
    return {job.id for job in response.context["cl"].result_list}


def _messages(response) -> list[tuple[str, str]]:
    return [(message.level_tag, str(message)) for message in get_messages(response.wsgi_request)]


def _completed(job: QuantumJob, counts: dict[str, int]) -> QuantumJob:
    """Finish a job through the ORM, as a worker would have (for tests that are not about running)."""
    now = timezone.now()
    QuantumJob.objects.filter(pk=job.pk).update(
        status=JobStatus.COMPLETED, counts=counts, started_at=now, finished_at=now, duration_seconds=0.004
    )
    job.refresh_from_db()
    return job


# --- The list


@pytest.mark.django_db
def test_changelist_filters_by_status_method_version_and_date_and_searches_name_owner_and_id(
    admin_client, operator_user, viewer_user
):
    ghz, bell, other = (
        job_submit(owner=operator_user, spec=JobSpec(source=GHZ5, name="ghz five")),
        job_submit(owner=operator_user, spec=JobSpec(source=BELL3, name="bell", method=SimulationMethod.STABILIZER)),
        job_submit(owner=viewer_user, spec=JobSpec(source=GHZ5, name="old one")),
    )
    _completed(ghz, {"00000": 1})
    QuantumJob.objects.filter(pk=other.pk).update(created_at=timezone.now() - timedelta(days=30))
    week_ago = (timezone.now() - timedelta(days=7)).isoformat()

    response = admin_client.get(CHANGELIST_URL)
    assert response.status_code == 200
    assert _listed_ids(response) == {ghz.id, bell.id, other.id}
    # No second COUNT(*) of the whole table, and an estimate instead of counting once it is large.
    assert response.context["cl"].show_full_result_count is False
    assert isinstance(response.context["cl"].paginator, EstimatedCountPaginator)
    assert _listed_ids(admin_client.get(CHANGELIST_URL, {"status__exact": "completed"})) == {ghz.id}
    assert _listed_ids(admin_client.get(CHANGELIST_URL, {"method__exact": "stabilizer"})) == {bell.id}
    assert _listed_ids(admin_client.get(CHANGELIST_URL, {"qasm_version__exact": "3"})) == {bell.id}
    assert _listed_ids(admin_client.get(CHANGELIST_URL, {"created_at__gte": week_ago})) == {ghz.id, bell.id}
    assert _listed_ids(admin_client.get(CHANGELIST_URL, {"q": "five"})) == {ghz.id}
    assert _listed_ids(admin_client.get(CHANGELIST_URL, {"q": "vera-viewer"})) == {other.id}
    assert _listed_ids(admin_client.get(CHANGELIST_URL, {"q": f"#{bell.id}"})) == {bell.id}
    assert _listed_ids(admin_client.get(CHANGELIST_URL, {"q": str(10**30)})) == set()


@pytest.mark.django_db
def test_changelist_query_count_stays_the_same_with_60_jobs_and_never_reads_the_programs(admin_client, operator_user):
    def page_queries() -> list[str]:
        with CaptureQueriesContext(connection) as queries:
            assert admin_client.get(CHANGELIST_URL).status_code == 200
        return [query["sql"] for query in queries.captured_queries]

    jobs_submit_batch(owner=operator_user, specs=[JobSpec(source=GHZ5, name=f"job {n}") for n in range(5)])
    with_5 = page_queries()
    jobs_submit_batch(owner=operator_user, specs=[JobSpec(source=GHZ5, name=f"job {n}") for n in range(55)])
    with_60 = page_queries()

    assert len(with_60) == len(with_5)
    assert not [sql for sql in with_60 if '"quantum_quantumjob"."source"' in sql]


# --- The detail


@pytest.mark.django_db(transaction=True)
def test_detail_of_a_job_run_by_a_worker_shows_histogram_drawing_program_and_gate_counts(
    client, superuser, operator_user, celery_worker
):
    job = job_submit(owner=operator_user, spec=JobSpec(source=GHZ5, name="ghz", shots=512, seed=7))
    deadline = time.monotonic() + 30
    while job.status != JobStatus.COMPLETED and time.monotonic() < deadline:
        time.sleep(0.05)
        job.refresh_from_db()
    assert job.status == JobStatus.COMPLETED, f"still {job.status} after 30 s; error: {job.error!r}"
    otp_force_login(client, superuser)

    response = client.get(f"{CHANGELIST_URL}{job.id}/change/")

    assert response.status_code == 200
    page = response.content.decode()
    assert set(job.counts) == {"00000", "11111"}
    assert '<svg xmlns="http://www.w3.org/2000/svg" class="histogram" role="img"' in page
    for bitstring, count in job.counts.items():
        assert f"<title>{bitstring}: {count:,} shots" in page
    assert "┤ H ├" in page  # the text drawing
    assert "cx q[3],q[4];" in page  # the program
    assert "<tr><td>cx</td><td>4</td></tr>" in page
    assert 'name="_save"' not in page


@pytest.mark.django_db
def test_detail_escapes_odd_bitstrings_and_says_when_there_are_no_counts(admin_client, operator_user):
    finished = _completed(job_submit(owner=operator_user, spec=JobSpec(source=GHZ5)), {"<script>x</script>": 3})
    queued = job_submit(owner=operator_user, spec=JobSpec(source=GHZ5))

    page = admin_client.get(f"{CHANGELIST_URL}{finished.id}/change/").content.decode()
    assert "&lt;script&gt;x&lt;/script&gt;: 3 shots" in page
    assert "<script>x</script>" not in page
    queued_page = admin_client.get(f"{CHANGELIST_URL}{queued.id}/change/").content.decode()
    assert "No counts: the job is queued." in queued_page


@pytest.mark.django_db
def test_jobs_cannot_be_added_changed_or_deleted_in_the_admin(client, superuser, operator_user):
    job = job_submit(owner=operator_user, spec=JobSpec(source=GHZ5, name="kept"))
    otp_force_login(client, superuser)
    assert client.get(f"{CHANGELIST_URL}add/").status_code == 403
    assert client.post(f"{CHANGELIST_URL}{job.id}/change/", {"name": "renamed"}).status_code == 403
    assert client.post(f"{CHANGELIST_URL}{job.id}/delete/", {"post": "yes"}).status_code == 403
    assert QuantumJob.objects.get(pk=job.pk).name == "kept"


# --- Actions


@pytest.mark.django_db
def test_cancel_action_cancels_a_queued_job_audits_it_and_warns_about_a_finished_one(
    admin_client, admin_user, operator_user
):
    queued = job_submit(owner=operator_user, spec=JobSpec(source=GHZ5))
    finished = _completed(job_submit(owner=operator_user, spec=JobSpec(source=GHZ5)), {"00000": 1024})

    response = admin_client.post(
        CHANGELIST_URL, {"action": "cancel_jobs", "_selected_action": [queued.id, finished.id]}
    )

    assert response.status_code == 302
    assert QuantumJob.objects.get(pk=queued.pk).status == JobStatus.CANCELLED
    assert QuantumJob.objects.get(pk=finished.pk).status == JobStatus.COMPLETED
    event = AuditEvent.objects.get(action="quantum.job.cancelled", object_id=str(queued.id))
    assert event.actor == admin_user
    assert _messages(response) == [
        ("success", "1 job cancelled."),
        (
            "warning",
            f"1 job not cancelled: #{finished.id}: Job #{finished.id} is already completed; "
            "there is nothing to cancel.",
        ),
    ]


@pytest.mark.django_db
def test_rerun_action_queues_a_copy_that_points_to_the_original(admin_client, admin_user, operator_user):
    original = _completed(
        job_submit(owner=operator_user, spec=JobSpec(source=GHZ5, name="again", shots=300, seed=11)), {"00000": 300}
    )

    response = admin_client.post(CHANGELIST_URL, {"action": "rerun_jobs", "_selected_action": [original.id]})

    copy = QuantumJob.objects.get(rerun_of=original)
    assert (copy.owner, copy.source, copy.shots, copy.seed, copy.name) == (operator_user, GHZ5, 300, 11, "again")
    assert copy.status == JobStatus.QUEUED
    assert AuditEvent.objects.filter(action="quantum.job.rerun", object_id=str(copy.id), actor=admin_user).exists()
    assert _messages(response) == [("success", f"1 copy queued: #{copy.id} (of #{original.id}).")]


@pytest.mark.django_db
def test_an_action_on_more_jobs_than_the_limit_changes_nothing_and_names_the_limit(
    admin_client, operator_user, monkeypatch
):
    monkeypatch.setattr(quantum_admin, "MAX_ACTION_JOBS", 2)
    jobs = jobs_submit_batch(owner=operator_user, specs=[JobSpec(source=GHZ5)] * 3)

    response = admin_client.post(
        CHANGELIST_URL, {"action": "cancel_jobs", "select_across": "1", "_selected_action": [jobs[0].id]}
    )

    assert _messages(response) == [
        (
            "error",
            "More than 2 jobs were selected; an action handles at most 2 at a time. "
            "Narrow the list with a filter or a search.",
        )
    ]
    assert set(QuantumJob.objects.values_list("status", flat=True)) == {JobStatus.QUEUED}


@pytest.mark.django_db
def test_staff_viewer_sees_all_jobs_but_gets_no_actions_and_cannot_cancel(client, roles, viewer_user, operator_user):
    job = job_submit(owner=operator_user, spec=JobSpec(source=GHZ5))
    staff_force_login(client, viewer_user)

    response = client.get(CHANGELIST_URL)
    assert response.status_code == 200
    assert _listed_ids(response) == {job.id}
    assert 'name="action"' not in response.content.decode()
    assert client.get(f"{CHANGELIST_URL}{job.id}/change/").status_code == 200

    client.post(CHANGELIST_URL, {"action": "cancel_jobs", "_selected_action": [job.id]})
    assert QuantumJob.objects.get(pk=job.pk).status == JobStatus.QUEUED
    assert not AuditEvent.objects.filter(action="quantum.job.cancelled").exists()


@pytest.mark.django_db
def test_staff_operator_sees_and_cancels_only_own_jobs(client, roles, operator_user):
    other_operator = UserFactory(username="olga-operator", roles=["operator"])
    own = job_submit(owner=operator_user, spec=JobSpec(source=GHZ5))
    others = job_submit(owner=other_operator, spec=JobSpec(source=GHZ5))
    staff_force_login(client, operator_user)

    assert _listed_ids(client.get(CHANGELIST_URL)) == {own.id}
    assert client.get(f"{CHANGELIST_URL}{others.id}/change/").status_code == 302  # "does not exist"
    client.post(CHANGELIST_URL, {"action": "cancel_jobs", "_selected_action": [own.id, others.id]})
    assert QuantumJob.objects.get(pk=own.pk).status == JobStatus.CANCELLED
    assert QuantumJob.objects.get(pk=others.pk).status == JobStatus.QUEUED


@pytest.mark.django_db
def test_roles_give_operators_view_and_add_and_viewers_view_of_quantum_jobs(roles):
    def quantum_permissions(role: str) -> set[str]:
        group = Group.objects.get(name=role)
        return set(group.permissions.filter(content_type__app_label="quantum").values_list("codename", flat=True))

    assert quantum_permissions("operator") == {"view_quantumjob", "add_quantumjob"}
    assert quantum_permissions("viewer") == {"view_quantumjob"}
    # Compliance officers get job usage through reports, not the job list.
    assert quantum_permissions("compliance") == set()
    assert quantum_permissions("admin") == set(
        Permission.objects.filter(content_type__app_label="quantum").values_list("codename", flat=True)
    )


# --- Renderings


def _svg_tree(svg: str) -> ET.Element:
    return ET.fromstring(svg)  # noqa: S314 (our own output, parsed to prove it is well-formed)


def test_histogram_svg_is_accessible_and_sorted_by_bitstring_with_counts_on_bars():
    svg = histogram_svg({"11": 5, "00": 7, "01": 1})
    tree = _svg_tree(svg)

    assert tree.get("role") == "img"
    title_id, desc_id = tree.get("aria-labelledby").split()
    assert tree.find(f"{SVG}title").get("id") == title_id
    assert tree.find(f"{SVG}desc").get("id") == desc_id
    assert tree.find(f"{SVG}desc").text == "3 distinct outcomes over 13 shots."
    bars = tree.findall(f"{SVG}g[@class='bar']")
    assert [bar.find(f"{SVG}text[@class='label']").text for bar in bars] == ["00", "01", "11"]
    assert [bar.find(f"{SVG}text[@class='count']").text for bar in bars] == ["7", "1", "5"]
    heights = [float(bar.find(f"{SVG}rect").get("height")) for bar in bars]
    assert heights[0] == max(heights)
    assert heights[1] == min(heights)
    # Self-contained: nothing to run and nothing to fetch.
    assert "<script" not in svg
    assert "http" not in svg.replace('xmlns="http://www.w3.org/2000/svg"', "")


def test_histogram_svg_escapes_odd_bitstrings():
    svg = histogram_svg({'<script>alert("x")</script>': 2, "a&b": 1})
    tree = _svg_tree(svg)

    assert "<script>" not in svg
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in svg
    labels = {bar.find(f"{SVG}text[@class='label']").text for bar in tree.findall(f"{SVG}g[@class='bar']")}
    assert labels == {'<script>alert("x")</script>', "a&b"}


def test_histogram_svg_shows_the_most_frequent_outcomes_and_says_how_many_were_left_out():
    counts = {format(value, "07b"): value + 1 for value in range(100)}  # 0000000 → 1 shot … 1100011 → 100 shots
    tree = _svg_tree(histogram_svg(counts, max_bars=10))

    labels = [bar.find(f"{SVG}text[@class='label']").text for bar in tree.findall(f"{SVG}g[@class='bar']")]
    assert labels == [format(value, "07b") for value in range(90, 100)]
    left_out_shots = sum(range(1, 91))
    assert tree.find(f"{SVG}text[@class='left-out']").text == (
        f"90 less frequent outcomes ({left_out_shots:,} shots) not shown."
    )
    assert "The 10 most frequent are shown; 90" in tree.find(f"{SVG}desc").text


def test_histogram_svg_of_no_counts_says_so():
    assert _svg_tree(histogram_svg({})).find(f"{SVG}desc").text == "No counts to show."


def test_circuit_text_drawing_draws_the_circuit_as_it_ran():
    drawing = circuit_text_drawing(BELL3.replace("c = measure q;\n", ""), 3, True)
    assert "┤ H ├" in drawing
    assert "meas" in drawing  # the measurements measure_all added
    assert "q_1" in drawing


def test_circuit_text_drawing_gives_a_short_note_for_huge_or_broken_circuits():
    too_many_operations = circuit_text_drawing(_chain_qasm2(20, layers=80), 2, False)
    too_wide_and_deep = circuit_text_drawing(_chain_qasm2(120), 2, False)
    too_long = circuit_text_drawing("// padding\n" * (MAX_DRAWN_SOURCE_CHARS // 10) + GHZ5, 2, False)
    broken = circuit_text_drawing('OPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[1];\nfoo q[0];\n', 2, False)

    assert too_many_operations.startswith("Not drawn: the circuit has 1,541 operations; circuits are drawn up to 1,000")
    assert too_wide_and_deep.startswith("Not drawn: 121 wires at depth 121 make 14,641 cells")
    assert too_long.startswith("Not drawn: the program is ")
    assert broken.startswith("Not drawn: OpenQASM 2 error at line 4")
    for note in (too_many_operations, too_wide_and_deep, too_long, broken):
        assert len(note) < 200 < MAX_DRAWING_CHARS
