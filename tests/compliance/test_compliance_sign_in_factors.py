"""The access review and MFA coverage say how each person signs in and with which factors; privileged users without
a phishing-resistant factor (a passkey) are flagged as informational."""

import pytest
from django.utils import timezone

from apps.accounts.oidc.models import OidcIdentity, ProviderMfaDevice
from apps.compliance.choices import ReportKind
from apps.compliance.reports import REPORT_BUILDERS, ReportParams
from apps.core.choices import Role
from tests.accounts.test_passkeys import passkey_create
from tests.factories import UserFactory
from tests.mfa import totp_device_create

pytestmark = pytest.mark.django_db
INFORMATIONAL = "privileged without a phishing-resistant factor (informational)"


def _sections(kind: str) -> dict:
    now = timezone.now()
    params = ReportParams(kind=kind, period_start=now - timezone.timedelta(days=1), period_end=now, filters={})
    return {section.name: section for section in REPORT_BUILDERS[kind](params)}


def _rows(section) -> dict[str, dict]:
    return {row[0]: dict(zip(section.columns, row, strict=True)) for row in section.rows}


@pytest.fixture
def people():
    with_passkey = UserFactory(username="pat-passkey", roles=[Role.ADMIN], is_staff=True)
    passkey_create(with_passkey, name="YubiKey")
    with_totp = UserFactory(username="tom-totp", roles=[Role.ADMIN], is_staff=True)
    totp_device_create(with_totp)
    sso = UserFactory(username="sam-sso", roles=[Role.OPERATOR])
    sso.set_unusable_password()
    sso.save()
    identity = OidcIdentity.objects.create(user=sso, issuer="https://idp.example.com", subject="sam")
    ProviderMfaDevice.objects.create(identity=identity, user=sso, name="Provider MFA (idp.example.com)", confirmed=True)
    return with_passkey, with_totp, sso


def test_access_review_shows_sign_in_method_and_each_factor_and_flags_codes_only_admins(people):
    section = _sections(ReportKind.ACCESS_REVIEW)["accounts"]
    rows = _rows(section)

    assert rows["pat-passkey"]["sign_in"] == "local"
    assert rows["pat-passkey"]["mfa_devices"] == "passkey 'YubiKey'"
    assert rows["pat-passkey"]["findings"] == ""
    assert rows["tom-totp"]["findings"] == INFORMATIONAL
    assert rows["sam-sso"]["sign_in"] == "SSO"
    assert rows["sam-sso"]["mfa_devices"] == "provider MFA"
    assert section.summary[INFORMATIONAL] == 1
    assert section.summary["accounts with findings"] == 0, "informational findings are counted apart"


def test_mfa_coverage_counts_passkeys_and_provider_mfa_and_lists_factors_per_account(people):
    sections = _sections(ReportKind.MFA_COVERAGE)

    assert sections["roles"].summary == {"active accounts": 3, "with MFA": 3, "percentage with MFA": 100.0}
    assert sections["without_mfa"].rows == []
    factors = _rows(sections["factors"])
    assert factors["pat-passkey"] == {
        "username": "pat-passkey",
        "roles": "admin",
        "sign_in": "local",
        "mfa_factors": "passkey",
        "phishing_resistant": "yes",
        "findings": "",
    }
    assert factors["tom-totp"]["mfa_factors"] == "TOTP"
    assert factors["tom-totp"]["findings"] == INFORMATIONAL
    assert (factors["sam-sso"]["sign_in"], factors["sam-sso"]["mfa_factors"]) == ("SSO", "provider MFA")
    assert sections["factors"].summary == {"signing in with SSO": 1, "with a passkey": 1, INFORMATIONAL: 1}


def test_a_persons_export_lists_their_passkeys_and_provider_mfa(people):
    with_passkey, _, sso = people
    now = timezone.now()
    for user, expected in (
        (with_passkey, ["passkey", "YubiKey", "yes"]),
        (sso, ["provider MFA", "Provider MFA (idp.example.com)", "yes"]),
    ):
        params = ReportParams(
            kind=ReportKind.SUBJECT_EXPORT,
            period_start=now - timezone.timedelta(days=1),
            period_end=now,
            filters={"username": user.username},
        )
        devices = next(
            section for section in REPORT_BUILDERS[ReportKind.SUBJECT_EXPORT](params) if section.name == "mfa_devices"
        )
        assert [row[:3] for row in devices.rows] == [expected]
