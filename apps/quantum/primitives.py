"""Checking what sweeps and estimator jobs ask for: parameter sets and observables. Pure functions, no Django.

Messages name the parameter set or observable at fault by its 0-based index, and the limit where one applies.
"""

from __future__ import annotations

import math
import re

# An estimator job without a target precision gets this one (the standard error of every expectation value).
DEFAULT_PRECISION = 0.01
MAX_OBSERVABLES = 50
MAX_TERMS = 200
# Per-shot outcomes are stored with the job; beyond this many (shots times parameter sets) ask for counts instead.
MAX_BITSTRINGS = 100_000
# A sampler sweep's counts are stored with the job: each set holds at most min(shots, 2^bits) outcomes, and all
# sets together at most this many (about 30 MB of JSON), however the outcomes fall.
MAX_SWEEP_OUTCOMES = 1_000_000
_PAULI = re.compile(r"^[IXYZ]+$")


class PrimitiveError(ValueError):
    """Parameter sets or observables that cannot run; ``field`` names the input at fault."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field
        self.message = message


def is_real_number(value) -> bool:
    # JSON true/false arrive as bool, which Python counts as int: a sweep value of true is a mistake, not 1.
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _names(names) -> str:
    return ", ".join(sorted(names))


def parameter_sets_check(parameters: list[str], parameter_sets, *, max_sets: int) -> list[dict[str, float]] | None:
    """The sets as names → floats, each naming exactly the circuit's ``parameters``; None for a fixed circuit."""
    if parameter_sets is None:
        if parameters:
            raise PrimitiveError(
                "parameter_sets",
                f"The circuit has input parameters ({_names(parameters)}) but no parameter_sets were given; "
                'send "parameter_sets": [{"name": value, …}, …] with a value for each.',
            )
        return None
    if not parameters:
        raise PrimitiveError(
            "parameter_sets", "The circuit has no input parameters; omit parameter_sets (or declare input float …)."
        )
    if not isinstance(parameter_sets, list) or not 1 <= len(parameter_sets) <= max_sets:
        got = f"{len(parameter_sets):,} sets" if isinstance(parameter_sets, list) else type(parameter_sets).__name__
        raise PrimitiveError("parameter_sets", f"parameter_sets is a list of 1 to {max_sets:,} objects; got {got}.")
    wanted = set(parameters)
    checked = []
    for index, values in enumerate(parameter_sets):
        if not isinstance(values, dict):
            raise PrimitiveError(
                "parameter_sets", f"Parameter set {index} is not an object of names and numbers: {values!r}."
            )
        missing, extra = wanted - set(values), set(values) - wanted
        if missing:
            raise PrimitiveError("parameter_sets", f"Parameter set {index} lacks a value for {_names(missing)}.")
        if extra:
            raise PrimitiveError(
                "parameter_sets",
                f"Parameter set {index} names {_names(extra)}, which the circuit does not have; "
                f"its parameters are {_names(wanted)}.",
            )
        for name, value in values.items():
            if not is_real_number(value):
                raise PrimitiveError(
                    "parameter_sets",
                    f"Parameter set {index}: {name} must be a finite real number; got {value!r}.",
                )
        checked.append({name: float(values[name]) for name in sorted(values)})
    return checked


def observables_check(observables, num_qubits: int) -> list[list[tuple[str, float]]]:
    """Observables as lists of (Pauli string, real coefficient); strings of I, X, Y, Z, one letter per qubit."""
    if not isinstance(observables, list) or not 1 <= len(observables) <= MAX_OBSERVABLES:
        got = f"{len(observables)}" if isinstance(observables, list) else type(observables).__name__
        raise PrimitiveError(
            "observables",
            f"An estimator job needs 1 to {MAX_OBSERVABLES} observables, each a list of "
            f'[pauli_string, coefficient] pairs (e.g. [[["ZZ", 1.0], ["XI", 0.5]]]); got {got}.',
        )
    checked = []
    for index, terms in enumerate(observables):
        if not isinstance(terms, list) or not 1 <= len(terms) <= MAX_TERMS:
            got = f"{len(terms)} terms" if isinstance(terms, list) else repr(terms)
            raise PrimitiveError(
                "observables",
                f"Observable {index} must be a list of 1 to {MAX_TERMS} [pauli_string, coefficient] pairs; got {got}.",
            )
        pairs = []
        for term in terms:
            if not (isinstance(term, list | tuple) and len(term) == 2 and isinstance(term[0], str)):
                raise PrimitiveError(
                    "observables", f"Observable {index}: each term is [pauli_string, coefficient]; got {term!r}."
                )
            pauli, coefficient = term
            if not _PAULI.match(pauli):
                raise PrimitiveError(
                    "observables",
                    f"Observable {index}: {pauli!r} is not a Pauli string; use only the letters I, X, Y and Z.",
                )
            if len(pauli) != num_qubits:
                raise PrimitiveError(
                    "observables",
                    f"Observable {index}: {pauli!r} has {len(pauli)} letters; the circuit has {num_qubits} qubits "
                    "(one letter per qubit, the rightmost acting on qubit 0).",
                )
            if not is_real_number(coefficient):
                raise PrimitiveError(
                    "observables",
                    f"Observable {index}: the coefficient of {pauli} must be a finite real number; "
                    f"got {coefficient!r}.",
                )
            pairs.append((pauli, float(coefficient)))
        checked.append(pairs)
    return checked


def precision_check(precision) -> float:
    """The estimator's target standard error: a number above 0 and at most 1; DEFAULT_PRECISION when omitted."""
    if precision is None:
        return DEFAULT_PRECISION
    if not is_real_number(precision) or not 0 < precision <= 1:
        raise PrimitiveError("precision", f"precision must be a number above 0 and at most 1; got {precision!r}.")
    return float(precision)
