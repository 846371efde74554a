"""Signal receivers that turn logins and model changes into audit events."""

from django.apps import apps
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.db.models.signals import m2m_changed, post_delete, post_save, pre_save
from django.dispatch import receiver

from .choices import Outcome
from .masking import masked
from .services import event_record
from .tracking import NEVER_TRACKED, diff, snapshot, stored_snapshot, tracking_for


@receiver(user_logged_in, dispatch_uid="audit_login")
def _login_succeeded(sender, request, user, **kwargs) -> None:
    event_record(action="auth.login.succeeded", actor=user, obj=user, request=request)


@receiver(user_logged_out, dispatch_uid="audit_logout")
def _logged_out(sender, request, user, **kwargs) -> None:
    if user is not None:
        event_record(action="auth.logout", actor=user, obj=user, request=request)


@receiver(user_login_failed, dispatch_uid="audit_login_failed")
def _login_failed(sender, credentials, request=None, **kwargs) -> None:
    username = str(credentials.get("username", ""))[:150]
    event_record(
        action="auth.login.failed",
        outcome=Outcome.FAILURE,
        changes={"username": username},
        request=request,
        object_type="accounts.user",
        object_repr=username,
    )


@receiver(pre_save, dispatch_uid="audit_pre_save")
def _remember_stored_row(sender, instance, raw=False, using=None, **kwargs) -> None:
    tracking = None if raw else tracking_for(sender)
    if tracking is not None:
        instance._audit_before = stored_snapshot(instance, tracking[1], using)


@receiver(post_save, dispatch_uid="audit_post_save")
def _record_save(sender, instance, created, raw=False, **kwargs) -> None:
    tracking = None if raw else tracking_for(sender)
    if tracking is None:
        return
    prefix, ignored = tracking
    after = snapshot(instance, ignored)
    before = None if created else getattr(instance, "_audit_before", None)
    instance._audit_before = after
    if before is None:
        event_record(action=f"{prefix}.created", obj=instance, changes={"after": masked(after)})
        return
    changes = diff(before, after)
    if changes:
        event_record(action=f"{prefix}.changed", obj=instance, changes=masked(changes))


def connect_delete_receivers() -> None:
    """Listen to deletions model by model, leaving out the never-tracked ones.

    A delete listener makes Django load and delete rows one by one instead of
    one DELETE statement; sessions, maintenance runs and the trail itself keep
    their fast bulk deletes.
    """
    for model in apps.get_models():
        if model._meta.label_lower not in NEVER_TRACKED:
            post_delete.connect(_record_delete, sender=model, dispatch_uid=f"audit_post_delete_{model._meta.label}")


def _record_delete(sender, instance, **kwargs) -> None:
    tracking = tracking_for(sender)
    if tracking is not None:
        event_record(
            action=f"{tracking[0]}.deleted", obj=instance, changes={"before": masked(snapshot(instance, tracking[1]))}
        )


M2M_ACTIONS = {"post_add": "added", "post_remove": "removed", "post_clear": "cleared"}


@receiver(m2m_changed, dispatch_uid="audit_m2m_changed")
def _record_m2m(sender, instance, action, reverse, model, pk_set, **kwargs) -> None:
    change = M2M_ACTIONS.get(action)
    tracking = tracking_for(type(instance)) if change else None
    if tracking is None:
        return
    field = next((f.name for f in type(instance)._meta.many_to_many if f.remote_field.through is sender), None)
    if field is None or field in tracking[1]:
        return
    related = sorted(str(pk) for pk in pk_set or ())
    event_record(action=f"{tracking[0]}.changed", obj=instance, changes={field: {change: related}})
