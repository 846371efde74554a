"""Reading and sizing OpenQASM circuits: pure functions shared by submit and the simulator process."""

from __future__ import annotations

import re
from dataclasses import dataclass

import qiskit.qasm2
import qiskit.qasm3
from qiskit import QuantumCircuit

from .choices import SimulationMethod

_COMMENT = re.compile(r"//[^\n]*|/\*.*?\*/", re.DOTALL)
_VERSION = re.compile(r"\A\s*OPENQASM\s+(\d+)(?:\.(\d+))?\s*;")
# Simulator state per amplitude: one complex double.
BYTES_PER_AMPLITUDE = 16
# Instructions that are not gates when counting and checking circuits.
NON_GATES = frozenset({"measure", "barrier", "reset", "delay"})
# Aer's stabilizer method accepts exactly these operations (Clifford gates).
CLIFFORD_GATES = frozenset(
    {"id", "x", "y", "z", "h", "s", "sdg", "sx", "sxdg", "cx", "cy", "cz", "swap", "ecr", "dcx", "iswap"}
)


class CircuitError(ValueError):
    """The program cannot run as submitted; the message says why and what to change."""


def qasm_version(source: str) -> int:
    """The OpenQASM major version the program declares; 3 when it declares none (allowed in OpenQASM 3)."""
    match = _VERSION.match(_COMMENT.sub("", source))
    if match is None:
        return 3
    version = int(match.group(1))
    if version not in (2, 3):
        raise CircuitError(f"OPENQASM {version} is not supported; use OpenQASM 2.0 or 3.")
    return version


def circuit_parse(source: str, version: int) -> QuantumCircuit:
    """Parse OpenQASM 2 or 3; errors name the line and column."""
    if version == 2:
        try:
            return qiskit.qasm2.loads(source, custom_instructions=qiskit.qasm2.LEGACY_CUSTOM_INSTRUCTIONS)
        except qiskit.qasm2.QASM2ParseError as exc:
            raise CircuitError(f"OpenQASM 2 error at {_qasm2_position(exc.message)}") from None
    try:
        return qiskit.qasm3.loads(source)
    except qiskit.qasm3.QASM3ImporterError as exc:
        raise CircuitError(f"OpenQASM 3 error at line {_qasm3_position(exc.message)}") from None
    except Exception as exc:  # openqasm3's parser raises its own exception types
        if type(exc).__name__ != "QASM3ParsingError":
            raise
        raise CircuitError(f"OpenQASM 3 syntax error: {_qasm3_syntax_error(source)}") from None


def _qasm2_position(message: str) -> str:
    # "<input>:5,0: needed ';', but instead saw an identifier" -> "line 5, column 1: needed ';', ..."
    match = re.match(r"<input>:(\d+),(\d+):\s*(.*)", message, re.DOTALL)
    if match is None:
        return message
    line, column, rest = match.groups()
    return f"line {line}, column {int(column) + 1}: {rest}"


def _qasm3_position(message: str) -> str:
    match = re.match(r"(\d+),(\d+):\s*(.*)", message, re.DOTALL)
    if match is None:
        return f"?: {message}"
    line, column, rest = match.groups()
    return f"{line}, column {int(column) + 1}: {rest}"


def _qasm3_syntax_error(source: str) -> str:
    """Run the OpenQASM 3 grammar again, collecting the first syntax error with its position.

    The strict parser stops with an exception that carries no message.
    """
    from antlr4 import CommonTokenStream, InputStream
    from antlr4.error.ErrorListener import ErrorListener
    from openqasm3.parser import qasm3Lexer, qasm3Parser

    errors: list[str] = []

    class FirstError(ErrorListener):
        def syntaxError(self, recognizer, offending_symbol, line, column, msg, exc):
            errors.append(f"line {line}, column {column + 1}: {msg}")

    lexer = qasm3Lexer(InputStream(source))
    parser = qasm3Parser(CommonTokenStream(lexer))
    for recognizer in (lexer, parser):
        recognizer.removeErrorListeners()
        recognizer.addErrorListener(FirstError())
    parser.program()
    return errors[0] if errors else "the program could not be parsed."


@dataclass(frozen=True)
class CircuitSummary:
    num_qubits: int
    num_clbits: int
    depth: int
    gate_counts: dict[str, int]
    has_measurements: bool
    is_clifford: bool


def circuit_summary(circuit: QuantumCircuit) -> CircuitSummary:
    counts = {name: int(count) for name, count in circuit.count_ops().items()}
    gates = set(counts) - NON_GATES
    return CircuitSummary(
        num_qubits=circuit.num_qubits,
        num_clbits=circuit.num_clbits,
        depth=circuit.depth(),
        gate_counts=counts,
        has_measurements="measure" in counts,
        is_clifford=gates <= CLIFFORD_GATES,
    )


def state_memory_bytes(method: str, num_qubits: int, *, is_clifford: bool) -> int | None:
    """Memory the simulator state needs, or None when the method's state does not grow as 2ⁿ."""
    if method == SimulationMethod.DENSITY_MATRIX:
        return BYTES_PER_AMPLITUDE * 4**num_qubits
    if method == SimulationMethod.STATEVECTOR or (method == SimulationMethod.AUTOMATIC and not is_clifford):
        return BYTES_PER_AMPLITUDE * 2**num_qubits
    return None


def max_qubits_for(method: str, memory_limit_bytes: int) -> int | None:
    """The largest register the method holds within the limit; None when not bounded by memory this way."""
    per_qubit_factor = {SimulationMethod.DENSITY_MATRIX: 4, SimulationMethod.STATEVECTOR: 2}.get(method)
    if method == SimulationMethod.AUTOMATIC:
        per_qubit_factor = 2  # non-Clifford circuits run as a statevector
    if per_qubit_factor is None:
        return None
    qubits = 0
    while BYTES_PER_AMPLITUDE * per_qubit_factor ** (qubits + 1) <= memory_limit_bytes:
        qubits += 1
    return qubits


def memory_limit_error(method: str, summary: CircuitSummary, needed: int, allowed: int) -> str:
    """Explain that the state does not fit, with the numbers and what would."""
    alternatives = ["matrix_product_state (memory grows with entanglement, not 2ⁿ)"]
    if summary.is_clifford:
        alternatives.insert(0, "stabilizer (this circuit uses Clifford gates only)")
    return (
        f"{summary.num_qubits} qubits need {_megabytes(needed)} for the {method} method, "
        f"over the limit of {_megabytes(allowed)}. "
        f"Use fewer qubits or the method {' or '.join(alternatives)}."
    )


def _megabytes(size: int) -> str:
    megabytes = size / 2**20
    if megabytes >= 1024:
        return f"{megabytes / 1024:,.1f} GiB"
    return f"{megabytes:,.1f} MiB" if megabytes < 10 else f"{megabytes:,.0f} MiB"


# Seconds per gate and amplitude of a state vector (a 24-qubit quantum volume of depth 10, about 1,300 gates, took
# 7.5 s on two cores): a rough figure, good enough to tell seconds from hours when routing a job.
SECONDS_PER_GATE_AMPLITUDE = 3.5e-10
# Fixed cost of one job on the simulator (parsing, results).
SECONDS_PER_JOB = 0.002


def estimated_seconds(method: str, summary: CircuitSummary, *, shots: int, noisy: bool) -> float:
    """A rough estimate of the simulation time, from the state size, the gate count and the shots.

    With noise a state vector is simulated once per shot (Aer's trajectories); without it, once and sampled.
    """
    gates = max(1, sum(count for name, count in summary.gate_counts.items() if name not in NON_GATES))
    n = summary.num_qubits
    if method == SimulationMethod.DENSITY_MATRIX:
        work = gates * 4.0**n
    elif method in (SimulationMethod.STABILIZER, SimulationMethod.EXTENDED_STABILIZER) or (
        method == SimulationMethod.AUTOMATIC and summary.is_clifford
    ):
        work = gates * n * n * (shots if noisy else 1)
    elif method == SimulationMethod.MATRIX_PRODUCT_STATE:
        work = gates * n * 1e3 * (shots if noisy else 1)
    else:
        work = gates * 2.0**n * (shots if noisy else 1)
    return round(SECONDS_PER_JOB + work * SECONDS_PER_GATE_AMPLITUDE, 6)
