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


def rotation_qasm3(parameters: tuple[str, ...] = ("theta",), measure: bool = True) -> str:
    """ry(first parameter) on qubit 0, then each further parameter as an rz on it: one input float per name."""
    lines = ["OPENQASM 3.0;", 'include "stdgates.inc";', *[f"input float {name};" for name in parameters]]
    lines += ["qubit[1] q;", "bit[1] c;", f"ry({parameters[0]}) q[0];"]
    lines += [f"rz({name}) q[0];" for name in parameters[1:]]
    if measure:
        lines.append("c = measure q;")
    return "\n".join(lines) + "\n"


def bell_rotation_qasm3(measure: bool = False) -> str:
    """ry(theta) on qubit 0, then cx 0 → 1: ⟨ZZ⟩ = 1, ⟨IZ⟩ = cos θ, ⟨XX⟩ = sin θ."""
    lines = ["OPENQASM 3.0;", 'include "stdgates.inc";', "input float theta;", "qubit[2] q;", "bit[2] c;"]
    lines += ["ry(theta) q[0];", "cx q[0], q[1];"]
    if measure:
        lines.append("c = measure q;")
    return "\n".join(lines) + "\n"
