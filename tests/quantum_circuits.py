"""OpenQASM programs the quantum tests submit."""


def ghz_qasm2(qubits: int = 5) -> str:
    lines = ["OPENQASM 2.0;", 'include "qelib1.inc";', f"qreg q[{qubits}];", f"creg c[{qubits}];", "h q[0];"]
    lines += [f"cx q[{i}],q[{i + 1}];" for i in range(qubits - 1)]
    lines.append("measure q -> c;")
    return "\n".join(lines) + "\n"


def ghz_qasm3(qubits: int = 3) -> str:
    lines = ["OPENQASM 3.0;", 'include "stdgates.inc";', f"qubit[{qubits}] q;", f"bit[{qubits}] c;", "h q[0];"]
    lines += [f"cx q[{i}], q[{i + 1}];" for i in range(qubits - 1)]
    lines.append("c = measure q;")
    return "\n".join(lines) + "\n"


def slow_qasm2(qubits: int = 22, layers: int = 20) -> str:
    """A circuit that keeps a statevector simulation busy for seconds (22 qubits, 20 layers ≈ 5 s here)."""
    lines = ["OPENQASM 2.0;", 'include "qelib1.inc";', f"qreg q[{qubits}];", f"creg c[{qubits}];"]
    for layer in range(layers):
        lines += [f"rx({0.1 + 0.01 * layer}) q[{i}];" for i in range(qubits)]
        lines += [f"cx q[{i}],q[{(i + 1 + layer) % qubits}];" for i in range(qubits) if (1 + layer) % qubits]
    lines.append("measure q -> c;")
    return "\n".join(lines) + "\n"
