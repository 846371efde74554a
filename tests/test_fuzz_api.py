"""Schema fuzzing: every operation of /api/v1/schema/, as an administrator and as a viewer, through the ASGI app.

schemathesis generates valid and invalid requests from the schema the portal serves and sends them to
project.asgi.application (real PostgreSQL and Redis); no answer may be a 5xx, and each must have a status and a
body that the schema documents for that operation. FUZZ_EXAMPLES sets the examples per operation (the suite uses
a few; ``make fuzz`` many, see tests/fuzz_campaign.py). The seed is fixed: a failure reproduces on the next run.
"""

import json
import os
from collections import Counter

import pytest
import schemathesis
from django.test import Client
from drf_spectacular.generators import SchemaGenerator
from hypothesis import HealthCheck, settings
from rest_framework.throttling import SimpleRateThrottle
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance

from apps.accounts.choices import Role
from apps.accounts.tokens import SCOPES, token_create
from apps.quantum.services import JobSpec, job_submit
from project.asgi import application

from .factories import UserFactory
from .mfa import totp_device_create

SCHEMA_PATH = "/api/v1/schema/"
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "4"))
CHECKS = [not_a_server_error, response_schema_conformance, status_code_conformance]
# Requests sent and failures by kind (ServerError, JsonSchemaError, UndefinedStatusCode), printed at the end.
FIGURES: Counter = Counter()
BELL = 'OPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[2];\ncreg c[2];\nh q[0];\ncx q[0],q[1];\nmeasure q -> c;\n'


@pytest.fixture(scope="module", autouse=True)
def fuzz_figures(request):
    """Print the campaign's figures once the module's tests have run."""
    yield
    counts = ", ".join(f"{name} {count}" for name, count in sorted(FIGURES.items()) if name != "cases")
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    # Fixture teardown output is captured like a test's; these lines are for the person running the campaign.
    with request.config.pluginmanager.get_plugin("capturemanager").global_and_fixture_disabled():
        reporter.write_line(
            f"\nfuzz: {FIGURES['cases']} cases at {EXAMPLES} examples per operation and role; "
            f"failures (shrinking repeats included): {counts or 'none'}"
        )


@pytest.fixture
def unthrottled(monkeypatch):
    """Rates far above what the fuzzer sends: a 429 would hide every other answer of the operation."""
    for scope in SimpleRateThrottle.THROTTLE_RATES:
        monkeypatch.setitem(SimpleRateThrottle.THROTTLE_RATES, scope, "1000000/min")


@pytest.fixture(params=[Role.ADMIN, Role.VIEWER])
def fuzz_token(request, transactional_db, unthrottled) -> str:
    """A read-write token of a user with the role (and a confirmed authenticator, which admins must have).

    The user has no email address: the schema must allow that (it once said ``format: email`` and got "").
    """
    role = request.param
    user = UserFactory(username=f"fuzz-{role}", email="", is_staff=role == Role.ADMIN, roles=[role])
    totp_device_create(user)
    # Something for the detail and action endpoints to find (hypothesis tries small ids early).
    if role == Role.ADMIN:
        job_submit(owner=user, spec=JobSpec(source=BELL, shots=16))
    return token_create(owner=user, name="fuzz", scopes=list(SCOPES), expires_in_days=1).secret


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _served_schema() -> dict:
    """The schema /api/v1/schema/ serves (test_the_fuzzed_schema_is_the_served_one checks that it is)."""
    return SchemaGenerator(patterns=None).get_schema(request=None, public=True)


# Loaded at collection, when no database is open yet: the generator needs none, the served view a signed-in user.
schema = schemathesis.openapi.from_dict(_served_schema())
schema.app = application


@schema.parametrize()
@settings(
    max_examples=EXAMPLES, derandomize=True, deadline=None, database=None, suppress_health_check=list(HealthCheck)
)
def test_no_operation_answers_a_server_error_or_off_schema(case, fuzz_token):
    FIGURES["cases"] += 1
    try:
        case.call_and_validate(headers=_bearer(fuzz_token), checks=CHECKS)
    except FailureGroup as failures:
        FIGURES.update(type(failure).__name__ for failure in failures.exceptions)
        raise


def test_the_fuzzed_schema_is_the_served_one(fuzz_token):
    response = Client().get(SCHEMA_PATH, HTTP_AUTHORIZATION=f"Bearer {fuzz_token}", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    served, fuzzed = response.json(), json.loads(json.dumps(_served_schema()))
    # Only the version label differs: the served one names the API version of its URL.
    assert {**served, "info": None} == {**fuzzed, "info": None}


# Found by fuzzing; kept as plain regressions so that they do not depend on the generator finding them again.


def test_batch_with_a_null_item_is_a_400_naming_the_item(db, operator_user):
    token = token_create(owner=operator_user, name="batch", scopes=list(SCOPES), expires_in_days=1).secret
    response = Client().post(
        "/api/v1/quantum/jobs/batch/",
        json.dumps({"jobs": [{"source": BELL}, None]}),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["errors"] == {"1": {"non_field_errors": ["This field may not be null."]}}
    assert body["detail"].startswith("1 of the jobs are invalid; nothing was submitted. Job 1: ")


def test_email_of_an_account_without_one_is_null(db, viewer_user):
    viewer_user.email = ""
    viewer_user.save(update_fields=["email"])
    token = token_create(owner=viewer_user, name="me", scopes=["read"], expires_in_days=1).secret
    response = Client().get("/api/v1/accounts/me/", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.json()["email"] is None
