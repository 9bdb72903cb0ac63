"""French street-name normalisation."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from geo.names import core, fold, normalise


def test_accents_case_and_ligatures() -> None:
    assert fold("Rue du Général Œuvre") == "rue du general oeuvre"


def test_abbreviations_and_particles_meet_the_full_name() -> None:
    assert normalise("R. du Gal Leclerc") == normalise("Rue du Général-Leclerc") == "rue general leclerc"
    assert normalise("Bd de la Liberté") == normalise("boulevard  de la liberte") == "boulevard liberte"
    assert normalise("Av. du Pdt J.F. Kennedy") == normalise("Avenue du Président J F Kennedy")


def test_saint_and_st_are_the_same() -> None:
    assert normalise("Rue St-Sauveur") == normalise("Rue Saint Sauveur") == "rue saint sauveur"
    assert normalise("Rue Ste Catherine") == normalise("Rue Sainte-Catherine")


def test_apostrophe_particles() -> None:
    assert normalise("Rue d'Inkermann") == normalise("RUE D INKERMANN") == "rue inkermann"
    assert normalise("Place de l'Opéra") == "place opera"


def test_core_drops_the_type_word() -> None:
    assert core("Rue Nationale") == core("nationale") == "nationale"
    assert core("Rue") == "rue"


@given(st.text(max_size=40))
def test_normalise_is_idempotent_and_ascii(name: str) -> None:
    key = normalise(name)
    assert normalise(key) == key
    assert key.isascii()
    assert key == key.strip()
