"""Sweeps and estimator jobs on the job page and in the admin: the table of sets and the expectation-value chart."""

import math
import re

import pytest
from django.conf import settings
from django.utils import timezone
from playwright.sync_api import expect

from apps.jobs.choices import JobStatus
from apps.quantum.models import QuantumJob
from apps.quantum.rendering import expectation_chart_svg, observable_label
from apps.quantum.services import JobSpec, job_submit
from apps.quantum.simulator_process import primitive_simulate
from apps.quantum.views import SWEEP_TABLE_ROWS
from tests.quantum_circuits import bell_rotation_qasm3, rotation_qasm3
from tests.shell_pages import LAPTOP, PHONE, PageProblems, page_check, photograph_both_widths, session_of

OBSERVABLES = [[["IZ", 1.0]], [["XX", 1.0], ["ZZ", -0.5]]]


def _ran(job: QuantumJob) -> QuantumJob:
    """The job completed with what the simulator child really returns for it (run here, in this process)."""
    request = {
        "circuits": [(job.source, job.qasm_version, job.measure_all)],
        "method": job.method,
        "shots": job.shots,
        "seed": 3,
        "noise": None,
        "primitive": job.primitive,
        "parameter_sets": job.parameter_sets,
        "observables": job.observables,
        "precision": job.precision,
        "bitstrings": job.bitstrings,
    }
    (outcome,) = primitive_simulate(request)
    now = timezone.now()
    QuantumJob.objects.filter(pk=job.pk).update(
        status=JobStatus.COMPLETED,
        started_at=now,
        finished_at=now,
        duration_seconds=outcome["seconds"],
        results=outcome["results"],
        counts=outcome.get("counts"),
    )
    job.refresh_from_db()
    return job


def _estimator_sweep(owner, sets: int = 21) -> QuantumJob:
    parameter_sets = [{"theta": math.pi * index / (sets - 1)} for index in range(sets)]
    spec = JobSpec(
        source=bell_rotation_qasm3(), primitive="estimator", observables=OBSERVABLES, parameter_sets=parameter_sets
    )
    return _ran(job_submit(owner=owner, spec=spec))


@pytest.mark.django_db
def test_estimator_sweep_page_shows_the_chart_and_a_row_per_set(client, operator_user):
    job = _estimator_sweep(operator_user)
    client.force_login(operator_user)

    page = client.get(f"/dashboard/jobs/{job.pk}/").content.decode()

    assert 'id="expectation-chart"' in page
    assert page.count('class="series"') == 2
    assert "⟨1·IZ⟩" in page
    assert "⟨1·XX - 0.5·ZZ⟩" in page
    table = page[page.index('id="sweep-results"') :]
    assert table.count("<tr><td>") == 21
    first_value = job.results[0]["expectation_values"][0]
    assert f"{first_value:.4f} ± 0.0100" in table
    result_part = client.get(f"/dashboard/jobs/{job.pk}/result/").content.decode()
    assert 'id="expectation-chart"' in result_part
    assert 'id="sweep-results"' in result_part


@pytest.mark.django_db
def test_sampler_sweep_page_shows_the_most_frequent_outcome_per_set_and_how_many_sets_are_not_shown(
    client, operator_user
):
    sets = [{"theta": 0.0}] * (SWEEP_TABLE_ROWS + 5)
    job = _ran(job_submit(owner=operator_user, spec=JobSpec(source=rotation_qasm3(), shots=50, parameter_sets=sets)))
    client.force_login(operator_user)

    page = client.get(f"/dashboard/jobs/{job.pk}/").content.decode()

    assert 'id="expectation-chart"' not in page
    assert page.count("<code>0</code> (50 shots)") == SWEEP_TABLE_ROWS
    assert "5 more parameter sets not shown" in page


@pytest.mark.django_db
def test_admin_shows_the_primitive_fields_read_only_with_the_chart(admin_client, operator_user):
    job = _estimator_sweep(operator_user, sets=5)

    page = admin_client.get(f"/admin/quantum/quantumjob/{job.pk}/change/").content.decode()

    assert page.count('class="expectation-chart"') == 1
    for label in ("Primitive", "Parameter sets", "Observables", "Precision", "Results (one per parameter set)"):
        assert label in page
    assert "expectation_values" in page
    assert 'name="precision"' not in page  # read-only: no form inputs


def test_chart_escapes_names_and_draws_one_point_per_set_in_parameter_order():
    results = [
        {"parameters": {"<b>": x}, "expectation_values": [x / 10, -x], "std_errors": [0.01, 0.02]} for x in (3, 1, 2)
    ]

    svg = str(expectation_chart_svg("<b>", results, [[["Z", 1.0]], [["X", 2.0], ["Y", -1.0]]]))

    assert "<b>" not in svg
    assert "&lt;b&gt;" in svg
    first_line = re.search(r'<polyline[^>]*points="([^"]+)"', svg).group(1)
    xs = [float(point.split(",")[0]) for point in first_line.split()]
    assert xs == sorted(xs)
    assert len(xs) == 3
    assert svg.count("<circle") == 6
    assert "&lt;b&gt; = 1: 0.1000 ± 0.0100" in svg
    assert observable_label([["X", 2.0], ["Y", -1.0]]) == "2·X - 1·Y"
    assert observable_label([["Z", -1.0]]) == "-1·Z"


@pytest.fixture
def estimator_sweep_page(transactional_db, operator_user) -> tuple[int, str]:
    """A completed estimator sweep and its owner's session, made before the browser starts."""
    return _estimator_sweep(operator_user).pk, session_of(operator_user, second_factor=False)


@pytest.mark.browser
@pytest.mark.pages
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("viewport", [LAPTOP, PHONE], ids=["1366", "390"])
def test_estimator_sweep_chart_in_chromium_fits_both_widths_without_errors(
    asgi_live_server, estimator_sweep_page, viewport, chromium
):
    job_id, cookie = estimator_sweep_page
    context = chromium.new_context(viewport=viewport)
    context.add_cookies([{"name": settings.SESSION_COOKIE_NAME, "value": cookie, "url": asgi_live_server}])
    page = context.new_page()
    problems = PageProblems(page)

    page.goto(f"{asgi_live_server}/dashboard/jobs/{job_id}/")

    chart = page.locator("#expectation-chart svg")
    expect(chart).to_be_visible()
    box = chart.bounding_box()
    assert box["width"] <= viewport["width"]  # the chart scales down with the screen
    assert page.locator("#expectation-chart polyline").count() == 2
    expect(page.locator("#sweep-results tbody tr")).to_have_count(21)
    page_check(page, problems, f"quantum-estimator-sweep-{viewport['width']}")
    if viewport == LAPTOP:
        photograph_both_widths(page, "quantum-estimator-sweep")
    context.close()
