"""Quantum job API bodies. Input serializers only coerce types: apps.quantum.services validates jobs."""

from functools import cached_property

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from ..choices import Primitive, Processor, SimulationMethod
from ..models import QuantumJob
from ..selectors import eta_seconds, queue_positions, throughput_per_second
from ..services import MAX_BATCH_JOBS, JobSpec


class NoiseSerializer(serializers.Serializer):
    depolarizing_1q = serializers.FloatField(required=False, help_text="Depolarizing error rate of 1-qubit gates.")
    depolarizing_2q = serializers.FloatField(required=False, help_text="Depolarizing error rate of 2-qubit gates.")
    readout = serializers.FloatField(required=False, help_text="Probability that a measured bit is flipped.")
    device = serializers.CharField(
        required=False,
        help_text="Instead of the rates: a device (e.g. fake_manila) whose calibrated noise, coupling map and basis "
        "the run uses; GET /api/v1/quantum/backends/ lists them.",
    )


@extend_schema_field(NoiseSerializer)
class NoiseField(serializers.DictField):
    """Keeps unknown keys and values as given, so that the service refuses a misspelt rate or a wrong type with its
    own message instead of it being silently dropped."""

    child = serializers.JSONField()


@extend_schema_field(serializers.ChoiceField(choices=SimulationMethod.choices))
class MethodField(serializers.CharField):
    """Any string: the service refuses an unknown method with the list of known ones."""


@extend_schema_field(serializers.ChoiceField(choices=Primitive.choices))
class PrimitiveField(serializers.CharField):
    """Any string: the service refuses an unknown primitive with the list of known ones."""


class JobSubmitSerializer(serializers.Serializer):
    source = serializers.CharField(
        trim_whitespace=False, allow_blank=True, help_text="An OpenQASM 2 or 3 program, at most 1 MiB."
    )
    shots = serializers.IntegerField(default=1024, help_text="1 to QUANTUM_MAX_SHOTS (100,000 unless configured).")
    method = MethodField(default=SimulationMethod.AUTOMATIC)
    name = serializers.CharField(default="", allow_blank=True, help_text="At most 200 characters.")
    tags = serializers.ListField(
        child=serializers.CharField(allow_blank=True, trim_whitespace=False),
        default=list,
        help_text="Up to 10 labels of letters, digits, '.', ':', '_' or '-'.",
    )
    seed = serializers.IntegerField(allow_null=True, default=None, help_text="Simulator seed; same seed, same counts.")
    noise = NoiseField(allow_null=True, default=None, help_text="Error rates from 0 to 1; omit for a perfect device.")
    priority = serializers.IntegerField(default=0, help_text="-10 to 10; higher runs first.")
    measure_all = serializers.BooleanField(default=False, help_text="Add a measurement of every qubit.")
    primitive = PrimitiveField(default=Primitive.SAMPLER)
    # Taken as any JSON: the service checks them, naming the parameter set or observable at fault.
    parameter_sets = serializers.JSONField(
        default=None,
        help_text="One object of input parameter names → numbers per run (1 to QUANTUM_MAX_SWEEP, 1,000 unless "
        "configured); required when the OpenQASM 3 program declares `input float` parameters.",
    )
    observables = serializers.JSONField(
        default=None,
        help_text='Estimator: observables, each a list of [pauli_string, coefficient] pairs, e.g. [[["ZZ", 1.0]]].',
    )
    precision = serializers.FloatField(
        allow_null=True, default=None, help_text="Estimator: target standard error, above 0 and at most 1 (0.01)."
    )
    bitstrings = serializers.BooleanField(
        default=False, help_text="Sampler: also return every shot's outcome (up to 100,000 shots times sets)."
    )
    processor = serializers.CharField(
        default=Processor.CPU, help_text="cpu, or gpu for a worker with qiskit-aer-gpu (queue quantum-gpu)."
    )


def job_spec(data: dict) -> JobSpec:
    """The service's JobSpec from a validated JobSubmitSerializer body."""
    return JobSpec(**{**data, "tags": tuple(data["tags"])})


class BatchJobListField(serializers.ListField):
    """Refuses an oversized batch before looking at any of its jobs."""

    def to_internal_value(self, data):
        if isinstance(data, list) and not 1 <= len(data) <= MAX_BATCH_JOBS:
            raise serializers.ValidationError(
                f"A batch holds 1 to {MAX_BATCH_JOBS} jobs; this one has {len(data)}.", code="batch_size"
            )
        return super().to_internal_value(data)


class JobBatchSubmitSerializer(serializers.Serializer):
    jobs = BatchJobListField(child=JobSubmitSerializer(), help_text=f"1 to {MAX_BATCH_JOBS} jobs.")


class JobBatchResultSerializer(serializers.Serializer):
    count = serializers.IntegerField()
    ids = serializers.ListField(child=serializers.IntegerField(), help_text="The new jobs' ids, in submitted order.")


class QueueInfo:
    """Queue positions of the jobs in one response, and the throughput for their ETA: each read once."""

    def __init__(self, jobs):
        self.positions = queue_positions(jobs)

    @cached_property
    def throughput(self) -> float:
        return throughput_per_second()

    def eta(self, job: QuantumJob) -> float | None:
        position = self.positions.get(job.id)
        return None if position is None else eta_seconds(position, self.throughput)


class QuantumJobSerializer(serializers.ModelSerializer):
    """A job as listed: without its circuit and counts."""

    # The context's ``queue`` (a QueueInfo of the jobs shown) gives positions and ETAs.

    owner = serializers.CharField(source="owner.username")
    tags = serializers.ListField(child=serializers.CharField())
    queue_position = serializers.SerializerMethodField(help_text="1-based place in the queue; null unless queued.")
    eta_seconds = serializers.SerializerMethodField(
        help_text="Expected wait before it starts, from the last 10 minutes' throughput; null when unknown."
    )

    class Meta:
        model = QuantumJob
        fields = [
            "id",
            "name",
            "owner",
            "tags",
            "status",
            "method",
            "primitive",
            "sweep_size",
            "shots",
            "priority",
            "qasm_version",
            "num_qubits",
            "depth",
            "created_at",
            "started_at",
            "finished_at",
            "duration_seconds",
            "queue_position",
            "eta_seconds",
            "queue",
            "status_reason",
            "error",
        ]
        read_only_fields = fields

    def get_queue_position(self, job: QuantumJob) -> int | None:
        queue = self.context.get("queue")
        return queue.positions.get(job.id) if queue else None

    def get_eta_seconds(self, job: QuantumJob) -> float | None:
        queue = self.context.get("queue")
        return queue.eta(job) if queue else None


class QuantumJobDetailSerializer(QuantumJobSerializer):
    """A job with its circuit, settings and, once completed, its counts."""

    gate_counts = serializers.DictField(child=serializers.IntegerField(), help_text="Operations by name.")
    noise = NoiseSerializer(allow_null=True, help_text="Null for a noiseless simulation.")
    counts = serializers.DictField(
        child=serializers.IntegerField(), allow_null=True, help_text="Outcome bitstring → shots; set when completed."
    )

    parameters = serializers.ListField(child=serializers.CharField(), help_text="The circuit's input parameters.")
    parameter_sets = serializers.ListField(
        child=serializers.DictField(child=serializers.FloatField()),
        allow_null=True,
        help_text="The sweep's parameter sets, in run order; null for a job without parameters.",
    )
    observables = serializers.JSONField(allow_null=True, help_text="Estimator: [[pauli_string, coefficient], …].")
    results = serializers.JSONField(
        allow_null=True,
        help_text="Sweeps, estimator jobs and bitstrings: one entry per parameter set, in order, with its "
        "`parameters` and `counts` (and `bitstrings`) or `expectation_values` and `std_errors` (one per "
        "observable). Null until completed.",
    )

    class Meta(QuantumJobSerializer.Meta):
        fields = [
            *QuantumJobSerializer.Meta.fields,
            "source",
            "measure_all",
            "num_clbits",
            "gate_counts",
            "estimated_memory_bytes",
            "estimated_seconds",
            "processor",
            "seed",
            "noise",
            "counts",
            "parameters",
            "parameter_sets",
            "observables",
            "precision",
            "bitstrings",
            "results",
            "attempts",
            "worker",
            "updated_at",
            "rerun_of",
        ]
        read_only_fields = fields


class BackendSerializer(serializers.Serializer):
    """A simulation method (``kind`` simulator) or a device whose noise a job may use (``kind`` device)."""

    kind = serializers.ChoiceField(choices=["simulator", "device"])
    method = serializers.CharField(required=False)
    label = serializers.CharField(required=False)
    max_qubits = serializers.IntegerField(
        required=False,
        allow_null=True,
        help_text="Largest register within QUANTUM_MAX_MEMORY_MB; null when memory is not the bound.",
    )
    max_shots = serializers.IntegerField(required=False)
    max_memory_mb = serializers.IntegerField(required=False)
    queue_length = serializers.IntegerField(required=False, help_text="Jobs waiting now, all methods together.")
    name = serializers.CharField(required=False, help_text='Device: its name, for `noise: {"device": name}`.')
    num_qubits = serializers.IntegerField(required=False, help_text="Device: its qubits.")
    basis_gates = serializers.ListField(child=serializers.CharField(), required=False, help_text="Device: its gates.")
    coupling_map_edges = serializers.IntegerField(
        required=False, help_text="Device: directed qubit pairs a two-qubit gate may act on."
    )
