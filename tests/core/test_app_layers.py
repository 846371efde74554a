"""The apps' layers (README: "How the apps depend on each other"), checked as `make lint` checks them."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _lint_imports(project: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [LINT_IMPORTS, "--no-cache"],
        cwd=project,
        env={"PYTHONPATH": str(project), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture
def project_copy(tmp_path) -> Path:
    shutil.copytree(ROOT / "apps", tmp_path / "apps", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    return tmp_path


def test_apps_keep_their_layers(project_copy):
    result = _lint_imports(project_copy)
    assert result.returncode == 0, result.stdout


@pytest.mark.parametrize(
    ("importer", "imported"),
    [
        ("core/health.py", "backups"),  # the ground imports no app
        ("audit/permissions.py", "accounts"),  # audit sits below accounts
        ("quantum/services.py", "registry"),  # feature apps are independent
        ("jobs/lifecycle.py", "quantum"),  # the job layer knows kinds only as registered
        ("accounts/services.py", "jobs"),  # the job layer sits above accounts
        ("readonly/services.py", "jobs"),  # maintenance mode sits below the job layer, which asks it
        ("accounts/services.py", "readonly"),  # and above accounts, whose sudo window it uses
        ("backups/services.py", "compliance"),  # nothing imports compliance
    ],
)
def test_an_import_against_the_layers_fails_the_lint(project_copy, importer, imported):
    path = project_copy / "apps" / importer
    path.write_text(path.read_text() + f"\nfrom apps.{imported} import apps  # noqa\n")
    result = _lint_imports(project_copy)
    assert result.returncode == 1
    assert f"apps.{importer.split('/')[0]} is not allowed to import apps.{imported}" in result.stdout
