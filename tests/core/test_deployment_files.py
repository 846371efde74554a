"""The Dockerfile, docker-compose.yml and README agree with the project they deploy.

These tests read files and Django's registry of commands and settings; they
need no database.
"""

from __future__ import annotations

import importlib.util
import json
import re
import shlex
from pathlib import Path

import pytest
import yaml
from celery.app.utils import find_app
from django.conf import settings
from django.core.management import get_commands

from project.settings.env import Environment
from project.settings.storage import file_storage

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
README = ROOT / "README.md"

MANAGE_PY_COMMAND = re.compile(r"\bpython3?\s+manage\.py\s+([\w-]+)")
CELERY_COMMAND = re.compile(r"\bcelery\s+-A\s+(\S+)\s+(\S+)")
README_TABLE_NAME = re.compile(r"^\|\s*`([A-Z][A-Z0-9_]*)`\s*\|", re.MULTILINE)
# env.int("NAME", ...), environment.str("NAME"), os.environ.get("NAME"), env.environ.setdefault("NAME", ...)
ENV_READ_CALL = re.compile(r"\b(?:env|environment|environ)\.\w+\(\s*\"([A-Z][A-Z0-9_]*)\"")
ENV_READ_ITEM = re.compile(r"\benviron\[\s*\"([A-Z][A-Z0-9_]*)\"\s*\]")
# A value compose takes from the shell or .env, with a default: ${NAME:-default}.
COMPOSE_PASSED_THROUGH = re.compile(r"^\$\{([A-Z][A-Z0-9_]*):-([^}]*)\}$")
README_TABLE_DEFAULT = re.compile(r"^\|\s*`([A-Z][A-Z0-9_]*)`\s*\|\s*([^|]*?)\s*\|", re.MULTILINE)


# --- helpers -----------------------------------------------------------------


def compose() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text())


def service_command(service: dict) -> str:
    command = service.get("command") or ""
    return " ".join(command) if isinstance(command, list) else command


def service_commands() -> dict[str, str]:
    return {name: service_command(service) for name, service in compose()["services"].items()}


def service_environment(service: dict) -> dict[str, str]:
    environment = service.get("environment") or {}
    if isinstance(environment, list):
        return dict(item.partition("=")[::2] for item in environment)
    return {name: str(value) for name, value in environment.items()}


def celery_invocations() -> list[tuple[str, str, str, list[str]]]:
    """(service, app, subcommand, argument list) for every Celery command in the compose file."""
    invocations = []
    for name, command in service_commands().items():
        if "celery" not in command:
            continue
        match = CELERY_COMMAND.search(command)
        assert match, f"service {name!r} runs celery but not as `celery -A <app> <subcommand>`: {command!r}"
        invocations.append((name, match.group(1), match.group(2), shlex.split(command[match.end() :])))
    return invocations


def worker_queues(arguments: list[str]) -> list[str] | None:
    """The queues named by -Q/--queues, or None when the worker consumes every configured queue."""
    for index, argument in enumerate(arguments):
        if argument in ("-Q", "--queues"):
            value = arguments[index + 1]
        elif argument.startswith("--queues="):
            value = argument.split("=", 1)[1]
        elif argument.startswith("-Q"):
            value = argument[2:]
        else:
            continue
        return [queue.strip() for queue in value.split(",") if queue.strip()]
    return None


def configured_queue_names() -> set[str]:
    return {queue.name for queue in settings.CELERY_TASK_QUEUES}


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, with continuation lines joined and comments dropped."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for line in DOCKERFILE.read_text().splitlines():
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if pending and stripped.startswith("#"):
            continue  # comment lines inside a continued instruction are dropped by Docker too
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        keyword, _, arguments = (pending + stripped).partition(" ")
        instructions.append((keyword.upper(), arguments.strip()))
        pending = ""
    assert not pending, "the Dockerfile ends inside a continued instruction"
    return instructions


def dockerfile_arguments(keyword: str) -> list[str]:
    return [arguments for instruction, arguments in dockerfile_instructions() if instruction == keyword]


def dockerfile_env() -> dict[str, str]:
    values = {}
    for arguments in dockerfile_arguments("ENV"):
        for assignment in shlex.split(arguments):
            name, _, value = assignment.partition("=")
            values[name] = value
    return values


def readme_section(title_word: str) -> str:
    """The text of the first README section whose '## ' heading contains ``title_word``."""
    text = README.read_text()
    match = re.search(rf"^## [^\n]*{title_word}[^\n]*\n(.*?)(?=^## |\Z)", text, re.MULTILINE | re.DOTALL)
    assert match, f"README.md has no '## ...{title_word}...' section"
    return match.group(1)


def readme_documented_variables() -> set[str]:
    names = set(README_TABLE_NAME.findall(readme_section("Environment")))
    assert names, "the README's environment section has no table of `NAME` rows"
    return names


def is_documented(name: str, documented: set[str]) -> bool:
    # <NAME>_FILE is the documented way to pass any variable from a file.
    return name in documented or (name.endswith("_FILE") and name.removesuffix("_FILE") in documented)


# --- docker-compose.yml --------------------------------------------------------


def test_compose_defines_database_broker_web_worker_and_beat():
    services = compose()["services"]

    assert {"postgres", "redis", "web", "worker", "beat"} <= set(services)


def test_compose_commands_exist_in_project():
    commands = get_commands()
    used = {
        (service, name)
        for service, command in service_commands().items()
        for name in MANAGE_PY_COMMAND.findall(command)
    }

    assert used, "no service runs `python manage.py <command>`"
    missing = sorted(f"{service}: {name}" for service, name in used if name not in commands)
    assert not missing, f"compose runs management commands the project does not have: {missing}"


def test_compose_web_prepares_database_and_admin_before_serving():
    command = service_commands()["web"]

    assert MANAGE_PY_COMMAND.findall(command) == [
        "migrate",
        "setup_roles",
        "setup_periodic_tasks",
        "ensure_admin",
        "runportal",
    ]
    assert "--host 0.0.0.0" in command


def test_compose_celery_commands_use_the_project_app():
    invocations = celery_invocations()

    assert invocations, "no service runs celery"
    for service, app_name, subcommand, _arguments in invocations:
        assert app_name == "project", f"{service} runs celery with -A {app_name}"
        assert subcommand in ("worker", "beat"), f"{service} runs `celery {subcommand}`"
    import project.celery

    assert find_app("project") is project.celery.app


def test_compose_runs_workers_and_exactly_one_beat():
    subcommands = [subcommand for _service, _app, subcommand, _arguments in celery_invocations()]

    assert subcommands.count("beat") == 1, "exactly one celery beat must run, or scheduled tasks run twice"
    assert "worker" in subcommands


def test_compose_workers_consume_only_and_all_configured_queues():
    configured = configured_queue_names()
    consumed: set[str] = set()
    for service, _app, subcommand, arguments in celery_invocations():
        if subcommand != "worker":
            continue
        queues = worker_queues(arguments)
        if queues is None:
            queues = sorted(configured)
        unknown = set(queues) - configured
        assert not unknown, f"{service} consumes queues not in CELERY_TASK_QUEUES: {sorted(unknown)}"
        consumed |= set(queues)

    assert consumed == configured, f"no worker consumes {sorted(configured - consumed)}"


def test_compose_secret_key_file_points_at_a_mounted_secret():
    document = compose()
    declared = document.get("secrets") or {}
    for name in ("web", "worker", "beat"):
        service = document["services"][name]
        path = service_environment(service).get("SECRET_KEY_FILE")
        assert path, f"{name} has no SECRET_KEY_FILE"
        secret = path.removeprefix("/run/secrets/")
        mounted = [entry if isinstance(entry, str) else entry.get("source") for entry in service.get("secrets", [])]

        assert path.startswith("/run/secrets/"), f"{name}: SECRET_KEY_FILE {path} is not a compose secret"
        assert secret in mounted, f"{name} does not mount the secret {secret!r}"
        assert "file" in declared.get(secret, {}), f"secret {secret!r} is not declared with a file"


def test_compose_environment_variables_are_documented_in_readme():
    documented = readme_documented_variables()
    undocumented = set()
    for name, service in compose()["services"].items():
        for variable in service_environment(service):
            if name == "postgres" and variable.startswith("POSTGRES_"):
                continue  # read by the postgres image, not by Opsdeck
            if not is_documented(variable, documented):
                undocumented.add(variable)

    assert not undocumented, f"README.md's environment table lacks {sorted(undocumented)}"
    assert "_FILE" in readme_section("Environment"), "README.md does not explain <NAME>_FILE"


def test_readme_documents_every_environment_variable_the_code_reads():
    sources = [*ROOT.joinpath("project").rglob("*.py"), *ROOT.joinpath("apps").rglob("*.py")]
    read = set()
    for source in sources:
        text = source.read_text()
        read |= set(ENV_READ_CALL.findall(text)) | set(ENV_READ_ITEM.findall(text))

    assert {"SECRET_KEY", "DATABASE_URL", "REDIS_URL", "OPSDECK_ADMIN_PASSWORD"} <= read, "the scan finds nothing"
    assert not read - readme_documented_variables(), "README.md's environment table lacks variables the code reads"


class _RecordingEnvironment(Environment):
    """An environment that notes the name of every variable read from it."""

    def __init__(self, variables: dict[str, str]):
        super().__init__(variables)
        self.read: set[str] = set()

    def raw(self, name: str, *default):
        self.read.add(name)
        return super().raw(name, *default)


def _s3_variables_read(prefix: str) -> set[str]:
    environment = _RecordingEnvironment({f"{prefix}_S3_BUCKET": "opsdeck-bucket"})
    file_storage(environment, prefix, folder=None)
    return {name for name in environment.read if name.startswith(f"{prefix}_S3_")}


@pytest.mark.parametrize("prefix", ["MEDIA", "BACKUP"])
def test_compose_passes_every_s3_storage_variable_with_the_defaults_of_settings_and_readme(prefix):
    read = _s3_variables_read(prefix)
    environments = [service_environment(compose()["services"][name]) for name in ("web", "worker", "beat")]
    passed = {name: value for name, value in environments[0].items() if name.startswith(f"{prefix}_S3_")}
    defaults = {}
    for name, value in passed.items():
        match = COMPOSE_PASSED_THROUGH.match(value)
        assert match, f"compose sets {name}: {value!r}, not ${{{name}:-<default>}}"
        assert match.group(1) == name, f"compose passes {match.group(1)} as {name}"
        defaults[name] = match.group(2)
    readme_defaults = dict(README_TABLE_DEFAULT.findall(readme_section("Environment")))

    assert {"BUCKET", "PREFIX", "SECRET_ACCESS_KEY"} <= {name.removeprefix(f"{prefix}_S3_") for name in read}
    assert set(passed) == read, "docker-compose.yml and the settings disagree on the variables of the bucket"
    assert all(environment.items() >= passed.items() for environment in environments)
    # Unset in the shell, compose passes its defaults: the portal must see what it sees with the variables unset.
    bucket = {f"{prefix}_S3_BUCKET": "opsdeck-bucket"}
    assert file_storage(Environment(defaults | bucket), prefix, folder=None) == file_storage(
        Environment(bucket), prefix, folder=None
    )
    assert file_storage(Environment(defaults), prefix, folder=None)["BACKEND"].endswith("FileSystemStorage")
    for name, default in defaults.items():
        documented = readme_defaults[name]
        assert (documented == f"`{default}`") if default else documented.startswith("empty"), (name, documented)


# --- Dockerfile ----------------------------------------------------------------


def test_dockerfile_builds_in_separate_stages():
    assert len(dockerfile_arguments("FROM")) > 1


def test_dockerfile_runs_as_a_non_root_user():
    users = dockerfile_arguments("USER")

    assert users, "the Dockerfile never switches away from root"
    assert users[-1].split(":")[0] not in ("root", "0")


def test_dockerfile_healthcheck_probes_liveness():
    healthchecks = dockerfile_arguments("HEALTHCHECK")

    assert len(healthchecks) == 1
    assert "/health/live" in healthchecks[0]
    # Slim images have neither curl nor wget.
    assert "curl" not in healthchecks[0]
    assert "wget" not in healthchecks[0]


def test_dockerfile_cmd_runs_an_existing_management_command():
    commands = dockerfile_arguments("CMD")

    assert commands, "the Dockerfile has no CMD"
    command = json.loads(commands[-1])  # exec form, so the server gets signals directly
    assert command[:2] == ["python", "manage.py"]
    assert command[2] in get_commands()


def test_dockerfile_uses_production_settings_that_exist():
    environment = dockerfile_env()

    assert environment.get("DJANGO_SETTINGS_MODULE") == "project.settings.production"
    assert importlib.util.find_spec(environment["DJANGO_SETTINGS_MODULE"]) is not None
    assert environment.get("OPSDECK_DATA_DIR") == "/data"


@pytest.mark.parametrize("path", [".venv", "var", ".git", "secrets"])
def test_dockerignore_keeps_local_state_out_of_the_image(path):
    ignored = {line.strip().rstrip("/") for line in ROOT.joinpath(".dockerignore").read_text().splitlines()}

    assert path in ignored


def test_image_has_the_postgresql_client_of_the_compose_servers_major_version():
    server = compose()["services"]["postgres"]["image"]
    major = server.split(":", 1)[1].split(".")[0]
    installs = " ".join(dockerfile_arguments("RUN"))
    assert f"postgresql-client-{major}" in installs, f"backups need pg_dump and pg_restore {major} for {server}"


def test_readme_docker_steps_create_every_secret_file_the_compose_file_mounts():
    mounted = {Path(secret["file"]).name for secret in compose()["secrets"].values()}
    steps = readme_section("Docker")
    missing = sorted(name for name in mounted if f"secrets/{name}" not in steps)
    assert not missing, f"the README's Docker steps do not create {missing}"


def test_readme_production_section_names_every_variable_production_settings_require():
    required = set(
        re.findall(
            r"env\.(?:secret|list|database)\(\"([A-Z_]+)\"", (ROOT / "project/settings/production.py").read_text()
        )
    )
    section = readme_section("Running in production")
    missing = sorted(name for name in required if f"`{name}`" not in section)
    assert required
    assert not missing, f"'Running in production' does not name {missing}"
