"""French street-name normalisation, so that "R. du Gal Leclerc" and "Rue du Général-Leclerc" meet.

``normalise`` gives a comparison key: lower case, no accents, punctuation and hyphens as spaces,
abbreviations expanded ("R." → rue, "Bd" → boulevard, "St" → saint, "Gal" → general …) and
particles dropped (de, du, des, d', l', la, le, les, à, au, aux). ``core`` also drops the leading
type word (rue, avenue, boulevard …) for a looser second-chance comparison.
"""

from __future__ import annotations

import re
import unicodedata

ABBREVIATIONS: dict[str, str] = {
    "r": "rue",
    "av": "avenue",
    "ave": "avenue",
    "bd": "boulevard",
    "bld": "boulevard",
    "blvd": "boulevard",
    "boul": "boulevard",
    "bvd": "boulevard",
    "pl": "place",
    "imp": "impasse",
    "all": "allee",
    "ch": "chemin",
    "che": "chemin",
    "chem": "chemin",
    "rte": "route",
    "qu": "quai",
    "sq": "square",
    "fbg": "faubourg",
    "fg": "faubourg",
    "pas": "passage",
    "pte": "porte",
    "prom": "promenade",
    "res": "residence",
    "sen": "sentier",
    "st": "saint",
    "ste": "sainte",
    "sts": "saints",
    "gal": "general",
    "gen": "general",
    "mal": "marechal",
    "mar": "marechal",
    "pdt": "president",
    "pres": "president",
    "dr": "docteur",
    "doc": "docteur",
    "cdt": "commandant",
    "cne": "capitaine",
    "lt": "lieutenant",
    "col": "colonel",
    "prof": "professeur",
    "mgr": "monseigneur",
}
PARTICLES = frozenset({"de", "du", "des", "d", "l", "la", "le", "les", "a", "au", "aux"})
TYPE_WORDS = frozenset(
    {
        "rue",
        "avenue",
        "boulevard",
        "place",
        "impasse",
        "allee",
        "chemin",
        "route",
        "quai",
        "square",
        "faubourg",
        "passage",
        "porte",
        "promenade",
        "residence",
        "sentier",
        "parvis",
        "cours",
        "pont",
        "esplanade",
        "voie",
        "rond",
        "point",
        "carrefour",
        "venelle",
        "cite",
        "parc",
        "mail",
        "ruelle",
    }
)
_NON_WORD = re.compile(r"[^a-z0-9]+")


def fold(text: str) -> str:
    """Lower case without accents or ligatures (œ → oe, æ → ae)."""
    text = text.lower().replace("œ", "oe").replace("æ", "ae").replace("ß", "ss")
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def tokens(name: str) -> list[str]:
    """Words of ``name`` after folding, abbreviation expansion and particle removal."""
    words = _NON_WORD.sub(" ", fold(name)).split()
    out: list[str] = []
    for word in words:
        expanded = ABBREVIATIONS.get(word, word)
        out.extend(w for w in expanded.split() if w not in PARTICLES)
    return out


def normalise(name: str) -> str:
    """Comparison key of a French street name ('' for a blank name)."""
    return " ".join(tokens(name))


def core(name: str) -> str:
    """``normalise`` without the leading type word ("rue nationale" → "nationale")."""
    words = tokens(name)
    while len(words) > 1 and words[0] in TYPE_WORDS:
        words = words[1:]
    return " ".join(words)
