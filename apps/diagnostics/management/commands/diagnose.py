"""``manage.py diagnose --output bundle.zip``: the diagnostics bundle for support (README, "Diagnostics bundle")."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from apps.diagnostics.services import diagnostics_bundle_build


class Command(BaseCommand):
    help = "Write the diagnostics bundle (versions, masked settings, health, queues, workers…) to a zip file."

    def add_arguments(self, parser):
        parser.add_argument("--output", "-o", required=True, help="Where to write the zip, e.g. bundle.zip.")
        parser.add_argument("--force", action="store_true", help="Replace the file if it exists.")

    def handle(self, *args, output: str, force: bool, **options):
        """Build the bundle (audited) and write it; refuses to overwrite a file without --force."""
        path = Path(output)
        if path.suffix.lower() != ".zip":
            raise CommandError(f"--output must name a .zip file, not {output!r}.")
        if not path.parent.is_dir():
            raise CommandError(f"The folder {str(path.parent)!r} does not exist.")
        if path.exists() and not force:
            raise CommandError(f"{output} exists; pass --force to replace it.")
        bundle = diagnostics_bundle_build(via="cli")
        partial = path.with_name(path.name + ".partial")
        partial.write_bytes(bundle.content)
        partial.replace(path)  # never a half-written bundle under the asked-for name
        self.stdout.write(f"Wrote {output} ({len(bundle.content)} bytes, {len(bundle.members)} files).")
