"""``manage.py report verify FILE MANIFEST``: is a report file the one the portal signed?"""

import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from apps.compliance.signing import MANIFEST_SCHEME, SigningKeyError, load_public_key, report_verify, signature_scheme


def _manifest(path: Path) -> dict:
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CommandError(f"No manifest file at {path}.") from None
    except (OSError, UnicodeError, ValueError) as exc:
        raise CommandError(f"The manifest {path} is not readable JSON ({exc}).") from None
    if not isinstance(manifest, dict):
        raise CommandError(f"The manifest {path} is not a JSON object.")
    return manifest


class Command(BaseCommand):
    help = "Verify compliance report files against their manifests (SHA-256 and Ed25519 signature)."

    def add_arguments(self, parser) -> None:
        commands = parser.add_subparsers(dest="subcommand", required=True)
        verify = commands.add_parser("verify", help="Check a report file's SHA-256 and signature against its manifest.")
        verify.add_argument("file", type=Path, help="The report file (csv, zip, json or pdf).")
        verify.add_argument("manifest", type=Path, help="Its manifest (JSON).")
        verify.add_argument(
            "--public-key", type=Path, help="Verify with this public key (PEM) instead of the configured one."
        )

    def handle(self, *args, subcommand: str, **options) -> None:
        path, key_path = options["file"], options["public_key"]
        if not path.is_file():
            raise CommandError(f"No report file at {path}.")
        manifest = _manifest(options["manifest"])
        try:
            key = None
            if key_path is not None:
                if not key_path.is_file():
                    raise CommandError(f"No public key file at {key_path}.")
                key = load_public_key(key_path.read_bytes(), source=f"--public-key {key_path}")
            problems, fingerprint = report_verify(path=path, manifest=manifest, public_key=key)
        except SigningKeyError as exc:
            raise CommandError(str(exc)) from None
        if problems:
            raise CommandError(f"FAILED: {path.name}: {'; '.join(problems)}.")
        signed = "the manifest" if signature_scheme(manifest) == MANIFEST_SCHEME else "the whole file (older report)"
        self.stdout.write(
            self.style.SUCCESS(
                f"OK: {path.name} matches its manifest: SHA-256 {manifest['sha256']}, "
                f"Ed25519 signature over {signed} valid for key {fingerprint}."
            )
        )
