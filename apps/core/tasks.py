"""The core's own scheduled housekeeping."""

from .maintenance import maintenance_task
from .services import maintenance_runs_prune

maintenance_runs_prune_task = maintenance_task("maintenance_runs_prune", maintenance_runs_prune)
