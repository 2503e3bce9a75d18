"""A tiny name → factory registry with "did you mean" hints (timm / pyiqa style).

Used for enhancers and for the benchmark's frozen task models::

    ENHANCERS = Registry("enhancer")

    @ENHANCERS.register("gamma")
    class Gamma(Enhancer): ...

    ENHANCERS.create("gamma", gamma=0.5)
    ENHANCERS.check_options("gamma", {"gama": 0.5})   # ValueError: ... (did you mean 'gamma'?)
"""

from __future__ import annotations

import difflib
import inspect
from typing import Any, Callable, Generic, Mapping, TypeVar

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

    def options(self, name: str) -> tuple[list[str], bool]:
        """The keyword options the factory of `name` takes, in order, and whether it also takes any (**kwargs)."""
        factory = self.get(name)
        try:
            params = inspect.signature(factory).parameters.values()
        except (TypeError, ValueError):  # a builtin without a signature: nothing to check against
            return [], True
        names = [p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
        return names, any(p.kind is p.VAR_KEYWORD for p in params)

    def check_options(self, name: str, options: Mapping[str, Any], flags: Mapping[str, str] | None = None) -> None:
        """Raise ValueError (one sentence) when `options` has a key the factory of `name` does not take, with the
        closest valid key ("did you mean") and the list of valid ones. `flags` maps keys that came from a
        command-line flag to that flag (e.g. {"dtype": "--dtype"}), so the message names what the user typed."""
        valid, open_ended = self.options(name)
        if open_ended:
            return
        takes = f"it takes {', '.join(valid)}" if valid else "it takes no options"
        for key in options:
            if key in valid:
                continue
            if flags and key in flags:
                raise ValueError(f"{flags[key]} does not apply to {self.kind} {name!r}; {takes}")
            close = difflib.get_close_matches(str(key), valid, n=1, cutoff=0.6)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ValueError(f"unknown option {key!r} for {self.kind} {name!r}{hint}; {takes}")
