"""Method groups: one name for many enhancers, as `gefu bench --methods all-official` takes them.

=================  ==========================================================================================
group              expands to
=================  ==========================================================================================
`all-classic`      every classic method (`NumpyEnhancer`: no learned weights), `none` first
`all-official`     every enhancer that runs on checkpoints of the weight table (its `weight_names`), where all
                   its files are present (`gefu.weights.find_weight`); the others are skipped, each with the
                   files it lacks
`all`              `all-classic`, then `all-official`; `scuf` is left out (it needs your trained checkpoint:
                   name it beside the group, e.g. `all,scuf`)
`default`          `none gamma lime zero-dce` (`DEFAULT_METHODS`), each official-weight method only where its
                   files are present: what `gefu bench` runs when `--methods` is not given, so the README's
                   main command works on a fresh offline install (without Zero-DCE's official weights it runs
                   the three classic methods and says which files would add Zero-DCE)
=================  ==========================================================================================

    expanded = expand_methods(["none", "all-official"])
    expanded.names      # ['none', 'clip-lit', 'iat-lol-v1', ...]  (the methods to run, each once, in order)
    expanded.skipped    # [Skipped('ruas-dark', 'all-official', 'weights ruas-dark missing ...'), ...]

Groups are expanded against the registry at call time, so a method registered later (a plug-in) joins the group
its class belongs to. Names that are not groups pass through unchanged (the registry judges them later).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from ..weights import find_weight
from . import list_enhancers
from .base import ENHANCERS, NumpyEnhancer

GROUPS: dict[str, str] = {
    "all-classic": "every classic method (no learned weights)",
    "all-official": "every method on official checkpoints whose weight files are present",
    "all": "all-classic and all-official",
    "default": "none, gamma, lime, and zero-dce where its official weights are present",
}
#: The `default` group, in order.
DEFAULT_METHODS: tuple[str, ...] = ("none", "gamma", "lime", "zero-dce")
#: registered enhancers `all` leaves out, and why (named explicitly, they run as usual).
NOT_IN_ALL: dict[str, str] = {
    "scuf": "not in 'all': without your trained checkpoint it does not enhance; add it by name with "
    "--option scuf.checkpoint=DIR",
}


@dataclass(frozen=True)
class Skipped:
    """A method a group would have run and did not: which group and why (one line)."""

    name: str
    group: str
    reason: str


@dataclass
class Expansion:
    """The methods to run (each once, in the order given) and those the groups skipped."""

    names: list[str] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)


def _unique_names(keep: Callable[[Any], bool]) -> list[str]:
    """Registered names whose factory satisfies `keep`, one name per factory (aliases dropped), sorted."""
    seen: set[int] = set()
    out = []
    for name in list_enhancers():
        factory = ENHANCERS.get(name)
        if id(factory) not in seen and keep(factory):
            seen.add(id(factory))
            out.append(name)
    return out


def classic_enhancers() -> list[str]:
    """Every registered classic method (a `NumpyEnhancer`: no weights), `none` first, then by name."""
    names = _unique_names(lambda f: isinstance(f, type) and issubclass(f, NumpyEnhancer))
    return sorted(names, key=lambda n: (n != "none", n))


def official_enhancers() -> list[str]:
    """Every registered enhancer that loads weight-table checkpoints (a non-empty `weight_names`), by name,
    whether or not its files are present here."""
    return _unique_names(lambda f: bool(getattr(f, "weight_names", ())))


def missing_weights(name: str) -> list[str]:
    """The weight-table entries enhancer `name` needs that are not present (verified) here; [] when it can run."""
    missing = []
    for entry in getattr(ENHANCERS.get(name), "weight_names", ()):
        try:
            found = find_weight(entry)
        except ValueError:  # not a file entry, or unknown to the table: nothing this machine can supply
            found = None
        if found is None:
            missing.append(entry)
    return missing


def _missing_line(files: list[str]) -> str:
    listed = " ".join(files)
    return (f"weights {', '.join(files)} missing (`gefu weights download {listed}`, or offline "
            "`gefu weights provision --from DIR`)")


def _group_members(group: str) -> tuple[list[str], list[Skipped]]:
    names: list[str] = []
    skipped: list[Skipped] = []
    if group in ("all-classic", "all"):
        names += classic_enhancers()
    official = official_enhancers() if group in ("all-official", "all") else []
    if group == "default":
        names += [n for n in DEFAULT_METHODS if n not in set(official_enhancers())]
        official = [n for n in DEFAULT_METHODS if n not in names]
    for name in official:
        missing = missing_weights(name)
        if missing:
            skipped.append(Skipped(name, group, _missing_line(missing)))
        else:
            names.append(name)
    if group == "all":
        taken = set(names) | {s.name for s in skipped}
        skipped += [Skipped(n, group, why) for n, why in NOT_IN_ALL.items() if n in ENHANCERS and n not in taken]
    return names, skipped


def expand_methods(tokens: Iterable[str]) -> Expansion:
    """Expand group names (`GROUPS`) among method names, in order. A method a group adds that is already listed
    (by name or by another group) is not added again; a name given twice by hand stays twice (the caller decides
    whether that is an error). A token that is neither a registered enhancer nor a group but close to a group
    name raises ValueError naming the groups; any other unknown name passes through."""
    out = Expansion()
    explicit: list[str] = []
    for token in (t.strip() for t in tokens):
        if not token:
            continue
        group = token.lower()
        if group in GROUPS:
            names, skipped = _group_members(group)
            out.names += [n for n in names if n not in out.names and n not in explicit]
            out.skipped += [s for s in skipped if s.name not in {k.name for k in out.skipped}]
            continue
        if token not in ENHANCERS:
            close = difflib.get_close_matches(group, list(GROUPS), n=1, cutoff=0.75)
            if close:
                raise ValueError(f"unknown method group {token!r} (did you mean {close[0]!r}?); groups: "
                                 + ", ".join(GROUPS))
        explicit.append(token)
        if token in out.names and token not in explicit[:-1]:
            continue  # a group added it already
        out.names.append(token)
    out.skipped = [s for s in out.skipped if s.name not in out.names]
    return out


__all__ = ["DEFAULT_METHODS", "GROUPS", "NOT_IN_ALL", "Expansion", "Skipped", "classic_enhancers", "expand_methods",
           "missing_weights", "official_enhancers"]
