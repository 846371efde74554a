"""Who can get in, and how well: the access review and MFA coverage (the accounts as they stand now)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import OuterRef, Prefetch
from django.utils import timezone
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice
from django_otp_webauthn.models import WebAuthnCredential

from apps.accounts import selectors as account_selectors
from apps.accounts.models import ApiToken, User
from apps.accounts.oidc.models import ProviderMfaDevice
from apps.core.choices import Role

from .base import ReportParams, Section, iso, joined, yes_no

# An active account with access that nobody has signed in to for this long is likely forgotten.
DORMANT_AFTER = timedelta(days=90)

PRIVILEGED_WITHOUT_MFA = "privileged without MFA"
DORMANT_WITH_ACCESS = "no login for 90 days but still active with access"
TOKEN_WITHOUT_EXPIRY = "token without expiry"  # noqa: S105 - a finding's text, not a secret
MFA_REQUIRED_NOT_ENROLLED = "MFA required but not enrolled"
ACCESS_FINDINGS = (PRIVILEGED_WITHOUT_MFA, MFA_REQUIRED_NOT_ENROLLED, DORMANT_WITH_ACCESS, TOKEN_WITHOUT_EXPIRY)
# Informational: a code (TOTP, recovery code, a provider's MFA of unknown kind) can be phished; a passkey cannot.
PRIVILEGED_WITHOUT_PHISHING_RESISTANT = "privileged without a phishing-resistant factor (informational)"

ACCESS_COLUMNS = [
    "username",
    "name",
    "email",
    "active",
    "staff",
    "superuser",
    "roles",
    "sign_in",
    "mfa_devices",
    "last_login",
    "joined",
    "api_tokens",
    "token_scopes",
    "token_expiry",
    "token_last_used",
    "locked_out",
    "findings",
]


def _users_for_review():
    # Prefetched, so the review costs the same few queries for ten accounts or ten thousand.
    live_tokens = ApiToken.objects.filter(revoked__isnull=True).defer("secret_hash").order_by("created", "id")
    return User.objects.order_by("username").prefetch_related(
        "groups",
        Prefetch("totpdevice_set", queryset=TOTPDevice.objects.order_by("id")),
        Prefetch("staticdevice_set", queryset=StaticDevice.objects.order_by("id")),
        Prefetch("api_tokens", queryset=live_tokens),
        *SIGN_IN_PREFETCHES,
    )


# What sign_in() and factors() read, prefetched so that they cost no query per user.
SIGN_IN_PREFETCHES = (
    Prefetch("webauthncredential_set", queryset=WebAuthnCredential.objects.filter(confirmed=True).order_by("id")),
    Prefetch("providermfadevice_set", queryset=ProviderMfaDevice.objects.filter(confirmed=True)),
    "oidc_identities",
)


def sign_in(user: User) -> str:
    """How the user signs in: "local" (a password), "SSO" (an identity provider), or "local and SSO"."""
    methods = [
        method
        for method, used in (("local", user.has_usable_password()), ("SSO", bool(user.oidc_identities.all())))
        if used
    ]
    return " and ".join(methods) or "none"


def factors(user: User) -> list[str]:
    """The user's confirmed second factors by type: TOTP, passkey, recovery code, provider MFA."""
    found = [
        ("TOTP", any(device.confirmed for device in user.totpdevice_set.all())),
        ("passkey", bool(user.webauthncredential_set.all())),
        ("recovery code", any(device.confirmed for device in user.staticdevice_set.all())),
        ("provider MFA", bool(user.providermfadevice_set.all())),
    ]
    return [name for name, present in found if present]


def _device_text(kind: str, device) -> str:
    return f"{kind} ({'confirmed' if device.confirmed else 'unconfirmed'})"


def _account_row(user: User, *, now: datetime, locked: set[str]) -> tuple[list, list[str]]:
    roles = sorted(group.name for group in user.groups.all())
    totp = list(user.totpdevice_set.all())
    static = list(user.staticdevice_set.all())
    tokens = [token for token in user.api_tokens.all() if token.expires is None or token.expires > now]
    kinds = factors(user)
    has_mfa = bool(set(kinds) - {"recovery code"})
    privileged = user.is_superuser or user.is_staff or Role.ADMIN in roles
    mfa_required = user.is_superuser or bool(set(roles) & set(settings.MFA_REQUIRED_ROLES))
    has_access = bool(user.is_superuser or user.is_staff or roles or tokens)
    last_seen = user.last_login or user.date_joined

    findings = []
    if privileged and not has_mfa:
        findings.append(PRIVILEGED_WITHOUT_MFA)
    elif privileged and "passkey" not in kinds:
        findings.append(PRIVILEGED_WITHOUT_PHISHING_RESISTANT)
    elif mfa_required and not has_mfa:
        findings.append(MFA_REQUIRED_NOT_ENROLLED)
    if user.is_active and has_access and last_seen < now - DORMANT_AFTER:
        findings.append(DORMANT_WITH_ACCESS)
    if any(token.expires is None for token in tokens):
        findings.append(TOKEN_WITHOUT_EXPIRY)

    last_used = max((token.last_used for token in tokens if token.last_used), default=None)
    row = [
        user.username,
        user.get_full_name(),
        user.email,
        yes_no(user.is_active),
        yes_no(user.is_staff),
        yes_no(user.is_superuser),
        joined(roles),
        sign_in(user),
        joined(
            [_device_text("totp", device) for device in totp]
            + [_device_text("recovery codes", device) for device in static]
            + [f"passkey {passkey.name!r}" for passkey in user.webauthncredential_set.all()]
            + ["provider MFA" for _ in user.providermfadevice_set.all()],
            "; ",
        ),
        iso(user.last_login),
        iso(user.date_joined),
        len(tokens),
        joined(sorted({scope for token in tokens for scope in token.scopes})),
        joined((f"{token.prefix}: {iso(token.expires) or 'never'}" for token in tokens), "; "),
        iso(last_used),
        yes_no(user.username in locked),
        joined(findings, "; "),
    ]
    return row, findings


def access_review(params: ReportParams) -> Iterator[Section]:
    """Every account with its roles, second factors, tokens and lockout, and what is wrong with it.

    The accounts are as they stand when the report is generated (the database keeps no history of them);
    the audit trail reports show what changed in the period.
    """
    now = timezone.now()
    locked = set(account_selectors.locked_attempts().values_list("username", flat=True))
    rows, counts = [], dict.fromkeys((*ACCESS_FINDINGS, PRIVILEGED_WITHOUT_PHISHING_RESISTANT), 0)
    superusers = active = flagged = 0
    for user in _users_for_review():
        row, findings = _account_row(user, now=now, locked=locked)
        rows.append(row)
        superusers += user.is_superuser
        active += user.is_active
        flagged += bool(set(findings) - {PRIVILEGED_WITHOUT_PHISHING_RESISTANT})
        for finding in findings:
            counts[finding] = counts.get(finding, 0) + 1
    yield Section(
        name="accounts",
        title="Accounts",
        columns=ACCESS_COLUMNS,
        rows=rows,
        findings_column="findings",
        summary={
            "as_of": iso(now),
            "accounts": len(rows),
            "active accounts": active,
            "superusers": superusers,
            "accounts with findings": flagged,
            **{finding: count for finding, count in counts.items()},
            "locked out now": sum(1 for row in rows if row[ACCESS_COLUMNS.index("locked_out")] == "yes"),
        },
    )


def _percentage(part: int, whole: int):
    return round(100 * part / whole, 1) if whole else ""


def mfa_coverage(params: ReportParams) -> Iterator[Section]:
    """Per role, how many active accounts have a confirmed authenticator; then those who have none."""
    users = list(
        User.objects.filter(is_active=True)
        .annotate(has_mfa=account_selectors.confirmed_device_exists(OuterRef("pk")))
        .prefetch_related("groups", "totpdevice_set", "staticdevice_set", *SIGN_IN_PREFETCHES)
        .order_by("username")
    )
    required_roles = set(settings.MFA_REQUIRED_ROLES)
    role_rows = []
    for role, label in [*((role.value, role.value) for role in Role), ("", "(no role)")]:
        members = [user for user in users if (role in user.role_names if role else not user.role_names)]
        with_mfa = sum(1 for user in members if user.has_mfa)
        required = role in required_roles
        finding = f"MFA required but {len(members) - with_mfa} without" if required and with_mfa < len(members) else ""
        role_rows.append(
            [label, len(members), with_mfa, len(members) - with_mfa, _percentage(with_mfa, len(members)),
             yes_no(required), finding]
        )  # fmt: skip
    with_mfa_total = sum(1 for user in users if user.has_mfa)
    yield Section(
        name="roles",
        title="MFA coverage per role",
        columns=["role", "users", "with_mfa", "without_mfa", "percentage", "mfa_required", "findings"],
        rows=role_rows,
        findings_column="findings",
        summary={
            "active accounts": len(users),
            "with MFA": with_mfa_total,
            "percentage with MFA": _percentage(with_mfa_total, len(users)),
        },
    )
    without = []
    for user in users:
        if user.has_mfa:
            continue
        required = user.is_superuser or bool(set(user.role_names) & required_roles)
        without.append(
            [user.username, user.get_full_name(), user.email, joined(user.role_names), yes_no(user.is_staff),
             yes_no(user.is_superuser), yes_no(required), iso(user.last_login),
             MFA_REQUIRED_NOT_ENROLLED if required else ""]
        )  # fmt: skip
    yield Section(
        name="without_mfa",
        title="Active accounts without MFA",
        columns=["username", "name", "email", "roles", "staff", "superuser", "mfa_required", "last_login", "findings"],
        rows=without,
        findings_column="findings",
        summary={"without MFA": len(without), "of which MFA required": sum(1 for row in without if row[-1])},
    )
    factor_rows = []
    for user in users:
        kinds = factors(user)
        privileged = user.is_superuser or user.is_staff or Role.ADMIN in user.role_names
        informational = privileged and user.has_mfa and "passkey" not in kinds
        factor_rows.append(
            [user.username, joined(user.role_names), sign_in(user), joined(kinds), yes_no("passkey" in kinds),
             PRIVILEGED_WITHOUT_PHISHING_RESISTANT if informational else ""]
        )  # fmt: skip
    yield Section(
        name="factors",
        title="Sign-in method and second factors per account",
        columns=["username", "roles", "sign_in", "mfa_factors", "phishing_resistant", "findings"],
        rows=factor_rows,
        findings_column="findings",
        summary={
            "signing in with SSO": sum(1 for row in factor_rows if "SSO" in row[2]),
            "with a passkey": sum(1 for row in factor_rows if row[4] == "yes"),
            PRIVILEGED_WITHOUT_PHISHING_RESISTANT: sum(1 for row in factor_rows if row[-1]),
        },
    )
