"""Real devices' noise: the calibration snapshots that qiskit-ibm-runtime ships with its fake backends.

Nothing here reaches a network: each fake backend reads a JSON snapshot from inside the installed package. Shared
by submit (names and sizes) and the simulator process (the backend itself); it does not import Django.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from functools import cache

# Operations of a backend's target that are not gates of its basis.
_NOT_BASIS = frozenset({"measure", "reset", "delay", "barrier", "if_else", "for_loop", "while_loop", "switch_case"})


@dataclass(frozen=True)
class Device:
    name: str
    num_qubits: int
    basis_gates: tuple[str, ...]
    coupling_map_edges: int


@cache
def _provider():
    # Imported on first use: the fake provider takes about 1.4 s to import.
    from qiskit_ibm_runtime.fake_provider import FakeProviderForBackendV2

    return FakeProviderForBackendV2()


@cache
def device_names() -> tuple[str, ...]:
    """Every device's name, sorted (cheap: no snapshot is read)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return tuple(sorted(backend.name for backend in _provider().backends()))


@cache
def device_backend(name: str):
    """The fake backend of ``name`` with its calibration snapshot loaded; KeyError for an unknown name."""
    if name not in device_names():
        raise KeyError(name)
    with warnings.catch_warnings():
        # Some snapshots (fake_nighthawk) warn that their error values are not typical: they are what is offered.
        warnings.simplefilter("ignore", UserWarning)
        backend = _provider().backend(name)
        backend.target  # noqa: B018 (reads the snapshot now, inside the filter)
    return backend


@cache
def device(name: str) -> Device:
    """What a user needs to know of one device; KeyError for an unknown name."""
    backend = device_backend(name)
    coupling = backend.coupling_map
    return Device(
        name=name,
        num_qubits=backend.num_qubits,
        basis_gates=tuple(sorted(set(backend.operation_names) - _NOT_BASIS)),
        coupling_map_edges=len(coupling.get_edges()) if coupling is not None else 0,
    )


def devices() -> list[Device]:
    """Every device (reading all snapshots takes about 3.5 s: callers cache the list)."""
    return [device(name) for name in device_names()]


def unknown_device_message(name: str) -> str:
    names = device_names()
    examples = ", ".join(name for name in ("fake_manila", "fake_jakarta", "fake_sherbrooke") if name in names)
    return (
        f"Unknown device {name!r}. Devices include {examples} ({len(names)} in all); "
        "GET /api/v1/quantum/backends/ lists every one with its qubits and basis gates."
    )
