"""Quantum jobs: an OpenQASM circuit, how to simulate it, and what came of it."""

from django.conf import settings
from django.db import models

from apps.jobs.models import Job

from .choices import Primitive, Processor, QasmVersion, SimulationMethod


class QuantumJob(Job):
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="quantum_jobs")
    name = models.CharField(max_length=200, blank=True)
    tags = models.JSONField(default=list, blank=True, help_text="Short labels to find jobs by.")

    source = models.TextField(help_text="The OpenQASM 2 or 3 program as submitted.")
    qasm_version = models.PositiveSmallIntegerField(choices=QasmVersion.choices)
    measure_all = models.BooleanField(default=False, help_text="Measurements were added to every qubit at submit.")
    num_qubits = models.PositiveIntegerField()
    num_clbits = models.PositiveIntegerField()
    depth = models.PositiveIntegerField()
    gate_counts = models.JSONField(default=dict, blank=True)
    estimated_memory_bytes = models.BigIntegerField(
        null=True, blank=True, help_text="Simulator state size for the method; empty when it does not grow with 2ⁿ."
    )

    shots = models.PositiveIntegerField()
    method = models.CharField(max_length=24, choices=SimulationMethod.choices, default=SimulationMethod.AUTOMATIC)
    seed = models.BigIntegerField(null=True, blank=True, help_text="Simulator seed; same seed, same counts.")
    noise_depolarizing_1q = models.FloatField(default=0.0, help_text="Depolarizing error rate of 1-qubit gates.")
    noise_depolarizing_2q = models.FloatField(default=0.0, help_text="Depolarizing error rate of 2-qubit gates.")
    noise_readout = models.FloatField(default=0.0, help_text="Probability that a measured bit is flipped.")
    processor = models.CharField(max_length=8, choices=Processor.choices, default=Processor.CPU)
    device = models.CharField(
        max_length=64, blank=True, help_text="Device whose calibrated noise, coupling map and basis the run uses."
    )
    estimated_seconds = models.FloatField(
        null=True, blank=True, help_text="Rough simulation time estimated at submit; with the memory, picks the queue."
    )
    queue = models.CharField(max_length=64, blank=True, help_text="The worker queue its size and needs route it to.")
    status_reason = models.CharField(
        max_length=500, blank=True, help_text="Why a queued job waits (no running worker can take it), if it does."
    )

    primitive = models.CharField(max_length=16, choices=Primitive.choices, default=Primitive.SAMPLER)
    parameters = models.JSONField(default=list, blank=True, help_text="The circuit's input parameters, by name.")
    parameter_sets = models.JSONField(
        null=True, blank=True, help_text="Values of the parameters, one object per run of the sweep."
    )
    sweep_size = models.PositiveIntegerField(default=1, help_text="Parameter sets run; shots count once per set.")
    observables = models.JSONField(
        null=True, blank=True, help_text="Estimator: each observable as [Pauli string, coefficient] pairs."
    )
    precision = models.FloatField(null=True, blank=True, help_text="Estimator: target standard error.")
    bitstrings = models.BooleanField(default=False, help_text="Sampler: the outcome of every shot was kept.")

    counts = models.JSONField(null=True, blank=True)
    results = models.JSONField(
        null=True, blank=True, help_text="One entry per parameter set (sweeps and estimator jobs)."
    )
    rerun_of = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="reruns")

    class Meta:
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["owner", "-id"], name="quantum_job_owner_recent"),
            models.Index(fields=["status", "-id"], name="quantum_job_status_recent"),
            # Each offered ordering has its (field, id) index: both directions of it are one index scan.
            models.Index(fields=["created_at", "id"], name="quantum_job_created_id"),
            models.Index(fields=["finished_at", "id"], name="quantum_job_finished_id"),
            models.Index(fields=["method", "-id"], name="quantum_job_method_recent"),
            models.Index(
                fields=["-priority", "id"],
                name="quantum_job_queue_order",
                condition=models.Q(status="queued"),
            ),
        ]
        constraints = [
            models.CheckConstraint(condition=models.Q(shots__gte=1), name="quantum_job_shots_positive"),
        ]

    def __str__(self) -> str:
        return f"Job #{self.pk} {self.name}".strip() if self.pk else self.name or "New job"

    @property
    def total_shots(self) -> int:
        return self.shots * self.sweep_size

    @property
    def uses_primitives(self) -> bool:
        """Sweeps, estimator jobs and per-shot bitstrings run through the primitives path and fill ``results``."""
        return self.parameter_sets is not None or self.primitive == Primitive.ESTIMATOR or self.bitstrings

    @property
    def noise(self) -> dict | None:
        if self.device:
            return {"device": self.device}
        rates = {
            "depolarizing_1q": self.noise_depolarizing_1q,
            "depolarizing_2q": self.noise_depolarizing_2q,
            "readout": self.noise_readout,
        }
        return rates if any(rates.values()) else None
