from django.db import models


class SimulationMethod(models.TextChoices):
    AUTOMATIC = "automatic", "Automatic"
    STATEVECTOR = "statevector", "Statevector"
    DENSITY_MATRIX = "density_matrix", "Density matrix"
    MATRIX_PRODUCT_STATE = "matrix_product_state", "Matrix product state"
    STABILIZER = "stabilizer", "Stabilizer (Clifford circuits)"
    EXTENDED_STABILIZER = "extended_stabilizer", "Extended stabilizer"


class Processor(models.TextChoices):
    """Where the simulator runs: GPU jobs go to the quantum-gpu queue, whose workers have qiskit-aer-gpu."""

    CPU = "cpu", "CPU"
    GPU = "gpu", "GPU"


class QasmVersion(models.IntegerChoices):
    QASM2 = 2, "OpenQASM 2"
    QASM3 = 3, "OpenQASM 3"


class Primitive(models.TextChoices):
    SAMPLER = "sampler", "Sampler (counts)"
    ESTIMATOR = "estimator", "Estimator (expectation values)"
