"""Alert names as people read them: one normal form, no invisible characters, and a twin key.

Two IVORNs that look the same on a page (a Cyrillic 'а' for a Latin 'a', another case, a
zero-width space) would split one object's light curve in two. ``clean_ivorn`` gives the stored
form and refuses what cannot be seen; ``ivorn_key`` maps look-alikes onto one key, so a new
alert that is a twin of an existing one is refused. The look-alike table is Unicode's own
(confusables.txt, through confusable_homoglyphs). No Django here.
"""

import unicodedata
from functools import lru_cache

from confusable_homoglyphs import confusables

from gsafollowup.errors import BadInput

MAX_IVORN = 255
#: Unicode categories no IVORN may hold: controls (C0 and C1), format characters (zero-width
#: spaces and joiners, bidi embeddings and overrides such as U+202E), line and paragraph separators.
INVISIBLE_CATEGORIES = {"Cc", "Cf", "Zl", "Zp"}


def clean_ivorn(value: str) -> str:
    """NFC and trimmed; refuse empty, over-long, control, invisible and bidi-override IVORNs.

    Inner spaces are legal (``ivo://TT Tri``).
    """
    ivorn = unicodedata.normalize("NFC", value or "").strip()
    if not ivorn:
        raise BadInput("EventID (the IVORN) is missing.")
    if len(ivorn) > MAX_IVORN:
        raise BadInput(f"EventID is longer than {MAX_IVORN} characters.")
    bad = next((c for c in ivorn if unicodedata.category(c) in INVISIBLE_CATEGORIES), None)
    if bad is not None:
        raise BadInput(f"EventID contains an invisible or control character (U+{ord(bad):04X}).")
    return ivorn


@lru_cache(maxsize=4096)
def _ascii_twin(char: str) -> str:
    """The ASCII character a non-ASCII one is confused with (Unicode's table), or itself."""
    for found in confusables.is_confusable(char, greedy=True, preferred_aliases=["latin"]) or []:
        for glyph in found["homoglyphs"]:
            if glyph["c"].isascii():
                return glyph["c"]
    return char


def ivorn_key(ivorn: str) -> str:
    """One key for IVORNs that read the same: compatibility-normalised, case-folded, look-alikes as ASCII.

    ASCII characters stay themselves ('1' and 'l' are different names), so only a non-ASCII
    look-alike or a case difference makes a twin.
    """
    text = unicodedata.normalize("NFKC", ivorn).casefold()
    return "".join(c if c.isascii() else _ascii_twin(c) for c in text).casefold()
