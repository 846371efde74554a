"""Linking a provider identity to a user in the admin: behind a fresh second factor, and audited."""

import pytest

from apps.accounts.models import OidcIdentity
from apps.audit.models import AuditEvent
from tests.factories import UserFactory
from tests.mfa import otp_force_login, sudo_force_login

pytestmark = pytest.mark.django_db

ADD_URL = "/admin/accounts/oidcidentity/add/"


def _link(client, user):
    return client.post(ADD_URL, {"user": user.pk, "issuer": "https://sso.example.test/realms/ops", "subject": "s-1"})


def test_linking_an_identity_needs_a_fresh_second_factor(client, superuser):
    target = UserFactory(username="linked")
    otp_force_login(client, superuser)
    response = _link(client, target)
    assert response.status_code == 302
    assert response["Location"].startswith("/account/reauthenticate/")
    assert not OidcIdentity.objects.exists()


def test_a_linked_identity_is_audited(client, superuser):
    target = UserFactory(username="linked")
    sudo_force_login(client, superuser)
    response = _link(client, target)
    assert response.status_code == 302
    identity = OidcIdentity.objects.get(subject="s-1")
    assert identity.user == target
    assert AuditEvent.objects.filter(action__startswith="accounts.oidc_identity", object_id=str(identity.pk)).exists()
