"""Opsdeck's client for scripts: ``Client`` (the API v1 with a token) and the ``opsdeck`` command."""

from .client import JOB_PATHS, NO_RETRIES, Client, RetryPolicy
from .errors import (
    ApiError,
    AuthenticationFailed,
    ConfigurationError,
    Conflict,
    ConnectionFailed,
    JobFailed,
    NotFound,
    OpsdeckError,
    PermissionDenied,
    RateLimited,
    ServiceUnavailable,
    StreamRefused,
    VerificationFailed,
    WaitTimedOut,
)
from .stream import TERMINAL_STATUSES, JobStream

__all__ = [
    "JOB_PATHS",
    "NO_RETRIES",
    "TERMINAL_STATUSES",
    "ApiError",
    "AuthenticationFailed",
    "Client",
    "ConfigurationError",
    "Conflict",
    "ConnectionFailed",
    "JobFailed",
    "JobStream",
    "NotFound",
    "OpsdeckError",
    "PermissionDenied",
    "RateLimited",
    "RetryPolicy",
    "ServiceUnavailable",
    "StreamRefused",
    "VerificationFailed",
    "WaitTimedOut",
]
