"""Night → day rewrites of captions (so the caption of a dark image describes the scene, not its lighting).

Two styles (``CAPTION_REWRITES``):

- ``"words"`` (gefu's default when a rewrite is asked for): four pairs on whole words, case kept —
  "A dark street at Night" → "A bright street at Day"; "darkness" and "dimension" are left alone.
- ``"official"`` (the released ``generate_captions.py``): its nine pairs applied in order as plain,
  case-sensitive substring replacements (``str.replace``), so "darkness" becomes "brightness", "dimly" becomes
  "clearly", "Night" is left alone, and "nighttime" is rewritten by the "night" pair before its own pair is
  reached. Kept exactly for fidelity: applying it twice changes nothing more.
"""

from __future__ import annotations

import re
from typing import Sequence

__all__ = ["NIGHT_TO_DAY", "OFFICIAL_NIGHT_TO_DAY", "CAPTION_REWRITES", "night_to_day", "rewrite_caption"]

#: gefu's whole-word pairs. "low light" comes first so that it is not split by another rule.
NIGHT_TO_DAY: tuple[tuple[str, str], ...] = (
    ("low light", "normal light"),
    ("night", "day"),
    ("dark", "bright"),
    ("dim", "clear"),
)

#: The released code's table, in its order (a Python dict literal there).
OFFICIAL_NIGHT_TO_DAY: tuple[tuple[str, str], ...] = (
    ("night", "day"),
    ("evening", "morning"),
    ("dark", "bright"),
    ("dim", "clear"),
    ("moonlit", "sunny"),
    ("shadows", "sunlight"),
    ("nighttime", "daytime"),
    ("low-light", "normal-light"),
    ("low light", "normal light"),
)

CAPTION_REWRITES = ("none", "words", "official")


def _match_case(word: str, like: str) -> str:
    if like.isupper() and len(like) > 1:
        return word.upper()
    if like[:1].isupper():
        return word[:1].upper() + word[1:]
    return word


def night_to_day(text: str, pairs: Sequence[tuple[str, str]] = NIGHT_TO_DAY) -> str:
    """Replace night words by day words (whole words only, case kept): "A dark street at Night" →
    "A bright street at Day"; "darkness" and "dimension" are left alone. "low light" also matches "low-light"."""
    for night, day in pairs:
        words = night.split(" ")
        pattern = r"\b" + r"[\s-]+".join(map(re.escape, words)) + r"\b"

        def repl(m: re.Match, day: str = day) -> str:
            found = m.group(0)
            sep = next((c for c in found if c in " -\t"), " ")
            return _match_case(day.replace(" ", sep), found)

        text = re.sub(pattern, repl, text, flags=re.IGNORECASE)
    return text


def rewrite_caption(text: str, style: str) -> str:
    """``text`` rewritten in ``style`` (one of ``CAPTION_REWRITES``; "none" returns it unchanged)."""
    if style == "none":
        return text
    if style == "words":
        return night_to_day(text)
    if style == "official":
        for night, day in OFFICIAL_NIGHT_TO_DAY:
            text = text.replace(night, day)
        return text
    raise ValueError(f"unknown caption rewrite {style!r}; choose one of {', '.join(CAPTION_REWRITES)}")
