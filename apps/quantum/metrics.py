from prometheus_client import Counter, Gauge, Histogram

QUANTUM_JOBS = Counter(
    "quantum_jobs", "Quantum jobs that reached a final state, by status and method.", ["status", "method"]
)
QUANTUM_JOB_DURATION = Histogram(
    "quantum_job_duration_seconds",
    "Simulation time of completed quantum jobs.",
    buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900),
)
QUANTUM_QUEUE_LENGTH = Gauge(
    "quantum_queue_length", "Quantum jobs waiting to run, as last counted.", multiprocess_mode="mostrecent"
)
QUANTUM_SHOTS = Counter("quantum_shots", "Shots of completed quantum jobs.")
QUANTUM_CIRCUIT_QUBITS = Histogram(
    "quantum_circuit_qubits", "Qubits of submitted circuits.", buckets=(1, 2, 5, 10, 15, 20, 25, 30, 40, 60, 100)
)
QUANTUM_CIRCUIT_DEPTH = Histogram(
    "quantum_circuit_depth", "Depth of submitted circuits.", buckets=(1, 5, 10, 50, 100, 500, 1000, 5000, 10000)
)
