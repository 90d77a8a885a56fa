"""Name -> method registries for solvers and optimizers, with validated parameters.

Methods are dataclasses; their fields are their parameters, each with a default and a one-
line doc in the field metadata. `get(name, **params)` checks names and types and says what
the choices are, like `scipy.optimize.minimize(method=...)`.
"""

from __future__ import annotations

import dataclasses
import difflib
import typing
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from solvers.errors import SolverError

T = TypeVar("T")


def param(default: Any, doc: str) -> Any:
    """Declare a method parameter with its default and documentation."""
    return field(default=default, metadata={"doc": doc})


@dataclass(frozen=True)
class ParamSpec:
    name: str
    type: type
    default: Any
    doc: str


def _closest(name: str, choices) -> str:
    if not choices:
        return "it takes no parameters"
    close = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.6)
    listing = ", ".join(sorted(choices)) or "none"
    return f"did you mean '{close[0]}'? choices: {listing}" if close else f"choices: {listing}"


def _coerce(spec: ParamSpec, value: Any, owner: str) -> Any:
    kind = spec.type
    if kind is bool:
        if isinstance(value, bool):
            return value
    elif kind is int:
        if isinstance(value, int) and not isinstance(value, bool) or isinstance(value, float) and value.is_integer():
            return int(value)
    elif kind is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif kind is str:
        if isinstance(value, str):
            return value
    raise SolverError(
        f"{owner}: parameter '{spec.name}' must be {_type_name(kind)}, got {value!r}",
        f"{spec.name}: {spec.doc}",
    )


def _type_name(kind: type) -> str:
    return {bool: "true or false", int: "a whole number", float: "a number", str: "a name"}[kind]


class Registry(Generic[T]):
    """Registered method classes of one family ("solver" or "optimizer")."""

    def __init__(self, family: str):
        self.family = family
        self._classes: dict[str, type[T]] = {}

    def register(self, cls: type[T]) -> type[T]:
        self._classes[cls.name] = cls
        return cls

    def available(self) -> list[str]:
        return sorted(self._classes)

    def cls(self, name: str) -> type[T]:
        if name not in self._classes:
            raise SolverError(f"unknown {self.family} '{name}'", _closest(name, self._classes))
        return self._classes[name]

    def describe(self, name: str) -> list[ParamSpec]:
        cls = self.cls(name)
        hints = typing.get_type_hints(cls)
        return [
            ParamSpec(f.name, hints[f.name], f.default, f.metadata.get("doc", ""))
            for f in dataclasses.fields(cls)
            if f.init
        ]

    def validate(self, name: str, params: dict[str, Any]) -> dict[str, Any]:
        """Check parameter names and types; return them converted (ints to floats where needed)."""
        specs = {spec.name: spec for spec in self.describe(name)}
        out = {}
        for key, value in params.items():
            if key not in specs:
                raise SolverError(f"{self.family} '{name}' has no parameter '{key}'", _closest(key, specs))
            out[key] = _coerce(specs[key], value, f"{self.family} '{name}'")
        return out

    def get(self, name: str, **params: Any) -> T:
        instance = self.cls(name)(**self.validate(name, params))
        check = getattr(instance, "check", None)
        if check is not None:
            check()
        return instance
