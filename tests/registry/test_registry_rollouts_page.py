"""The model page shows rollouts (split, rollback target, history), and each version's tags, lineage and signature;
its buttons promote, roll back and remove an alias through the same services as the API."""

import io
from pathlib import Path

import pytest
from django.contrib.messages import get_messages

from apps.core.choices import Role
from apps.registry.models import ModelVersion, RegisteredModel
from apps.registry.services import (
    alias_move,
    alias_route,
    model_register,
    version_update,
    version_upload,
    version_validate,
)
from tests.factories import UserFactory
from tests.mfa import otp_force_login
from tests.registry_models import build_tiny_classifier, pack_zip

pytestmark = [pytest.mark.usefixtures("registry_storage"), pytest.mark.django_db]

PAGE = "/registry/sentiment/"


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return build_tiny_classifier(tmp_path_factory.mktemp("page") / "model")


def _ready(model: RegisteredModel, folder: Path, actor) -> ModelVersion:
    version = version_upload(model=model, upload=io.BytesIO(pack_zip(folder)), actor=actor)
    version_validate(version_id=version.pk)
    version.refresh_from_db()
    return version


@pytest.fixture
def rollout(operator_user, folder):
    """v1 and v2 ready; staging split 90/10 (v2 the canary); v2 tagged, with lineage and a signature."""
    model = model_register(owner=operator_user, name="sentiment", task="text-classification")
    first, second = _ready(model, folder, operator_user), _ready(model, folder, operator_user)
    alias_move(model=model, name="staging", version=first, actor=operator_user)
    alias_route(
        model=model,
        name="staging",
        targets=[{"version": 1, "weight": 90}, {"version": 2, "weight": 10}],
        actor=operator_user,
    )
    version_update(
        version=second,
        actor=operator_user,
        changes={
            "tags": ["candidate", "q4"],
            "training_dataset": "tickets-2026-11",
            "source_run_url": "https://runs.example.com/8d1e",
            "parent_version": 1,
            "input_schema": {"type": "string", "maxLength": 500},
        },
    )
    return model


def _messages(response) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


def test_page_shows_the_split_history_tags_lineage_and_signature(client, rollout, viewer_user):
    otp_force_login(client, viewer_user)
    page = client.get(PAGE).content.decode()
    assert 'data-split="v1 90 % · v2 10 %"' in page
    assert "staging canary 10 %" in page
    assert 'aria-label="Stable v1, canary v2 at 10 %"' in page
    assert (
        '<td>Split between two versions</td><td class="split">v1</td><td class="split">v1 90 % · v2 10 %</td>' in page
    )
    assert '<td>Set to one version</td><td class="split">—</td><td class="split">v1</td>' in page
    assert '<span class="chip chip-tag">candidate</span>' in page
    assert "tickets-2026-11" in page
    assert '<a href="https://runs.example.com/8d1e" rel="noopener noreferrer nofollow">' in page
    assert "<dt>Parent</dt><dd>v1</dd>" in page
    assert "&quot;maxLength&quot;: 500" in page
    # A reader gets no buttons.
    assert "Promote v2" not in page


def test_owner_promotes_rolls_back_and_removes_from_the_page(client, rollout, operator_user):
    client.force_login(operator_user)
    assert "Promote v2" in client.get(PAGE).content.decode()

    promoted = client.post(PAGE + "aliases/staging/promote/", follow=True)
    assert "staging of sentiment promoted: v2." in _messages(promoted)
    assert rollout.aliases.get(name="staging").split == [{"version": 2, "weight": 100}]

    rolled_back = client.post(PAGE + "aliases/staging/rollback/", follow=True)
    assert "staging of sentiment rolled back: v1." in _messages(rolled_back)

    removed = client.post(PAGE + "aliases/staging/delete/", follow=True)
    assert "staging of sentiment removed." in _messages(removed)
    assert not rollout.aliases.exists()
    assert '<td>Removed</td><td class="split">v1</td><td class="split">—</td>' in removed.content.decode()


def test_refusals_show_as_messages_and_readers_cannot_post(client, rollout, operator_user, viewer_user):
    admin = UserFactory(roles=[Role.ADMIN])
    alias_move(model=rollout, name="production", version=rollout.versions.get(version=1), actor=admin)
    client.force_login(operator_user)
    refused = client.post(PAGE + "aliases/production/rollback/", follow=True)
    assert "production was not changed: Moving the production alias needs the admin role." in _messages(refused)
    nothing = client.post(PAGE + "aliases/production/frobnicate/")
    assert nothing.status_code == 404
    client.logout()
    otp_force_login(client, viewer_user)
    assert client.post(PAGE + "aliases/staging/promote/").status_code == 403
    assert client.get(PAGE + "aliases/staging/promote/").status_code == 405
