"""The client's exceptions: one base class, and one class per kind of answer a script may want to handle."""

from __future__ import annotations

from typing import Any


class OpsdeckError(Exception):
    """Anything the client could not do; ``str()`` is one line that says why."""


class ConfigurationError(OpsdeckError):
    """The client is missing something it needs locally (the portal's URL, a token, a readable file)."""


class ConnectionFailed(OpsdeckError):
    """The portal could not be reached (after the retries allowed for the request)."""


class ApiError(OpsdeckError):
    """The portal answered with an error: its status and the API's error body ``{"detail", "code", "errors"?}``.

    ``retry_after`` is the wait the portal asked for (429 and 503), in seconds, when it gave one.
    """

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        code: str = "",
        body: Any = None,
        retry_after: float | None = None,
        url: str = "",
    ) -> None:
        self.status = status
        self.detail = detail
        self.code = code
        self.body = body
        self.retry_after = retry_after
        self.url = url
        super().__init__(self._line())

    @property
    def errors(self) -> dict[str, Any]:
        """Field errors of a 400 (``{"field": ["message"]}``), else empty."""
        errors = self.body.get("errors") if isinstance(self.body, dict) else None
        return errors if isinstance(errors, dict) else {}

    def _line(self) -> str:
        detail = " ".join(self.detail.split()) or "no detail given"
        code = f" {self.code}" if self.code else ""
        return f"{detail} (HTTP {self.status}{code})"


class AuthenticationFailed(ApiError):
    """401: the token is missing, unknown, expired or revoked."""


class PermissionDenied(ApiError):
    """403: the token's user may not do this (role, scope, network, or a browser-only action)."""


class NotFound(ApiError):
    """404: no such object, or not one the user may see."""


class Conflict(ApiError):
    """409: the object is not in a state that allows the request."""


class RateLimited(ApiError):
    """429: over a rate or quota, still so after the retries allowed."""


class ServiceUnavailable(ApiError):
    """503: the portal or a service it needs is unavailable (maintenance, queue down), still so after retries."""


ERRORS_BY_STATUS: dict[int, type[ApiError]] = {
    401: AuthenticationFailed,
    403: PermissionDenied,
    404: NotFound,
    409: Conflict,
    429: RateLimited,
    503: ServiceUnavailable,
}


class StreamRefused(OpsdeckError):
    """The live stream was refused at the handshake or closed by the portal (bad token, job not visible)."""

    def __init__(self, message: str, *, code: int | None = None) -> None:
        self.code = code
        super().__init__(message)


class JobFailed(OpsdeckError):
    """A job that was waited for ended failed or cancelled; ``job`` is its last state from the API."""

    def __init__(self, kind: str, job: dict[str, Any]) -> None:
        self.kind = kind
        self.job = job
        reason = job.get("error") or job.get("status_reason") or "no reason given"
        super().__init__(f"{kind} job {job.get('id')} {job.get('status')}: {' '.join(str(reason).split())}")


class WaitTimedOut(OpsdeckError):
    """A job did not finish within the time the caller allowed."""


class VerificationFailed(OpsdeckError):
    """A report file does not match its signed manifest; ``problems`` lists every check that failed."""

    def __init__(self, file_name: str, problems: list[str]) -> None:
        self.problems = problems
        super().__init__(f"{file_name} does not verify: {'; '.join(problems)}")
