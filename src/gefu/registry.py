"""A tiny name → factory registry with "did you mean" hints (timm / pyiqa style).

Used for enhancers and for the benchmark's frozen task models::

    ENHANCERS = Registry("enhancer")

    @ENHANCERS.register("gamma")
    class Gamma(Enhancer): ...

    ENHANCERS.create("gamma", gamma=0.5)
"""

from __future__ import annotations

import difflib
from typing import Any, Callable, Generic, TypeVar

T = TypeVar("T")


class Registry(Generic[T]):
    """Maps names to factories (classes or functions). Names are case-insensitive."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._factories: dict[str, Callable[..., T]] = {}

    def register(self, name: str, *aliases: str) -> Callable[[Callable[..., T]], Callable[..., T]]:
        """Decorator registering a factory under `name` (and optional aliases)."""

        def decorator(factory: Callable[..., T]) -> Callable[..., T]:
            for key in (name, *aliases):
                key = key.lower()
                if key in self._factories:
                    raise KeyError(f"{self.kind} {key!r} is already registered")
                self._factories[key] = factory
            return factory

        return decorator

    def unregister(self, name: str) -> None:
        """Remove `name` (plug-ins registered for a while, e.g. by tests); unknown names are ignored."""
        self._factories.pop(name.lower(), None)

    def names(self) -> list[str]:
        """All registered names, sorted."""
        return sorted(self._factories)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._factories

    def get(self, name: str) -> Callable[..., T]:
        """The factory for `name`; unknown names raise ValueError with the closest valid names."""
        key = name.lower() if isinstance(name, str) else name
        if key not in self._factories:
            close = difflib.get_close_matches(str(key), self.names(), n=3, cutoff=0.5)
            hint = f" (did you mean {' or '.join(repr(c) for c in close)}?)" if close else ""
            raise ValueError(f"unknown {self.kind} {name!r}{hint}. Available: {', '.join(self.names())}.")
        return self._factories[key]

    def create(self, name: str, **options: Any) -> T:
        """Build the object registered as `name` with keyword `options`."""
        return self.get(name)(**options)
