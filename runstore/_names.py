"""Run ids and display names, and the checks of what users type: ids, names, notes,
tags, and whole numbers written as text."""

from __future__ import annotations

import os
import re
import string
from collections.abc import Iterable
from typing import cast, overload

from ._errors import UsageError
from ._values import INT64_MAX, INT64_MIN, storable_text

_ID_ALPHABET = string.ascii_lowercase + string.digits
FORBIDDEN = "/\\#?%:"
_INTEGER = re.compile(r"-?[0-9]+")

_ADJECTIVES = (
    "amber", "ancient", "autumn", "bold", "brave", "bright", "calm", "cosmic", "crimson",
    "dainty", "dark", "dawn", "deep", "dry", "eager", "earnest", "fancy", "fiery", "fluent",
    "fresh", "gentle", "giddy", "glad", "glowing", "golden", "grand", "hardy", "hazy",
    "icy", "jolly", "kind", "lively", "lucky", "lunar", "misty", "noble", "olive",
    "pious", "polar", "proud", "quiet", "rare", "rosy", "royal", "rustic", "sandy",
    "serene", "sharp", "silent", "silver", "snowy", "solar", "stellar", "stoic", "sunny",
    "swift", "tidy", "twilight", "vivid", "warm", "wild", "winter", "wise", "young",
)
_NOUNS = (
    "badger", "bird", "brook", "butterfly", "cloud", "comet", "dawn", "deer", "dew",
    "dream", "dust", "fern", "field", "fire", "firefly", "flower", "fog", "forest",
    "frog", "frost", "glade", "grass", "haze", "hill", "lake", "leaf", "meadow",
    "moon", "morning", "mountain", "night", "oak", "ocean", "owl", "paper", "pine",
    "planet", "pond", "rain", "resonance", "river", "sea", "shadow", "shape", "sky",
    "smoke", "snow", "sound", "spark", "star", "sun", "sunset", "surf", "thunder",
    "tree", "violet", "voice", "water", "wave", "wind", "wildflower", "wood",
)


def _choice(options: str | tuple[str, ...]) -> str:
    # os.urandom rather than the secrets module, which costs ~5 ms to import.
    return options[int.from_bytes(os.urandom(4), "big") % len(options)]


def new_run_id() -> str:
    """8 random lowercase base-36 characters, as wandb generates."""
    return "".join(_choice(_ID_ALPHABET) for _ in range(8))


def new_run_name(number: int) -> str:
    """Two random words and a number, e.g. snowy-owl-10."""
    return f"{_choice(_ADJECTIVES)}-{_choice(_NOUNS)}-{number}"


@overload
def check_text(what: str, value: str) -> str: ...
@overload
def check_text(what: str, value: object) -> str | None: ...
def check_text(what: str, value: object) -> str | None:
    """A text argument (name, notes, ...): None, or a string SQLite can store."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise UsageError(f"{what} must be a string, got {type(value).__name__}")
    if not storable_text(value):
        raise UsageError(f"{what} {value!r} holds characters that are not valid Unicode text "
                         "(lone surrogates); decode it properly first")
    return value


def check_path_part(what: str, value: object, max_len: int = 128) -> str:
    """Validate a run id or project name: non-empty text without / \\ # ? % :."""
    if not isinstance(value, str) or check_text(what, value) is None:
        raise UsageError(f"{what} must be a string, got {type(value).__name__}")
    if not value.strip() or value != value.strip():
        raise UsageError(f"{what} {value!r} must be non-empty without surrounding whitespace")
    bad = sorted({c for c in value if c in FORBIDDEN})
    if bad:
        raise UsageError(
            f"{what} {value!r} contains {' '.join(bad)}; ids and project names may not "
            f"contain any of {' '.join(FORBIDDEN)}"
        )
    if len(value) > max_len:
        raise UsageError(f"{what} {value!r} is longer than {max_len} characters")
    return value


def check_name(name: object) -> str:
    """A run's display name: text SQLite can store, not empty or only whitespace. The
    one rule for init(), the `Run.name` setter and the UI's edit (init() treats None
    and "" as "generate one", as wandb does)."""
    if not isinstance(name, str) or not name.strip():
        raise UsageError(f"a run's name must be non-empty text (not only spaces), "
                         f"got {name!r}")
    return check_text("name", name)


def check_notes(notes: object) -> str | None:
    """A run's notes: None (no notes) or text SQLite can store. The one rule for
    init(), the `Run.notes` setter and the UI's edit."""
    return check_text("notes", notes)


def check_tags(tags: object) -> tuple[str, ...]:
    """Tags as a tuple of 1-64 character strings (a lone string is one tag)."""
    if tags is None:
        return ()
    if isinstance(tags, str):
        tags = (tags,)
    try:
        given = tuple(cast(Iterable[object], tags))  # a TypeError if it is not iterable
    except TypeError:
        raise UsageError(f"tags must be a list of strings, got {tags!r}") from None
    checked: list[str] = []
    for tag in given:
        if not isinstance(tag, str) or not 1 <= len(tag) <= 64:
            raise UsageError(f"tag {tag!r} must be a string of 1 to 64 characters")
        checked.append(check_text("tag", tag))
    return tuple(dict.fromkeys(checked))


def parse_int64(text: str) -> int | None:
    """`text` as an int when it is ASCII digits (after an optional "-") within SQLite's
    integer range, else None. (`int()` and the regex `\\d` also take "١٢", `str.isdigit()`
    even "²", on which `int()` raises, as it does beyond 4300 digits.)"""
    if not _INTEGER.fullmatch(text):
        return None
    digits = text.lstrip("-").lstrip("0") or "0"
    if len(digits) > len(str(INT64_MAX)):
        return None
    value = -int(digits) if text.startswith("-") else int(digits)
    return value if INT64_MIN <= value <= INT64_MAX else None
