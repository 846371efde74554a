"""The software a process runs, as operators and support ask for it (workers view, diagnostics bundle)."""

from __future__ import annotations

import platform
from importlib import metadata

# Distributions whose versions matter when something misbehaves; read from package metadata, so nothing heavy
# (torch, qiskit-aer) is imported just to name its version.
DISTRIBUTIONS = (
    "Django",
    "celery",
    "kombu",
    "djangorestframework",
    "channels",
    "psycopg",
    "redis",
    "qiskit",
    "qiskit-aer",
    "torch",
    "transformers",
)


def software_versions() -> dict[str, str]:
    """Python and the portal's main packages: ``{"python": "3.11.2", "Django": "5.2.19", …}``; a package that is
    not installed reads "not installed"."""
    versions = {"python": platform.python_version()}
    for name in DISTRIBUTIONS:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions
