from django.core.management.base import BaseCommand

from apps.core.services import periodic_tasks_sync
from project.schedule import SCHEDULE


class Command(BaseCommand):
    help = "Create or update the Celery beat schedule defined in project/schedule.py (idempotent)."

    def handle(self, *args, **options) -> None:
        counts = periodic_tasks_sync(schedule=SCHEDULE)
        self.stdout.write(
            "Beat schedule: {created} created, {updated} updated, {unchanged} unchanged.".format(**counts)
        )
