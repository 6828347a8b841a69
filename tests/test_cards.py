"""Plausibility cards are checked by perturbation for every registered rule."""

import dataclasses

import pytest

from plasticity.observe.plausibility import measure, probe_rule, verify
from plasticity.rules import names


def probe(name, activation="relu", **options):
    # Three hidden layers, so that the first has hidden layers above it and the last has some below.
    return probe_rule(name, options, activation)


@pytest.mark.parametrize("activation", ["relu", "tanh"])
@pytest.mark.parametrize("name", names("mlp"))  # spiking rules: tests/test_spiking.py
def test_every_card_holds_under_perturbation(name, activation):
    rule = probe(name, activation)
    measured = measure(rule)
    assert verify(rule.card(), measured) == []
    # Nothing may read activities or weights below the layer's own input.
    assert not any(measured.below) and not any(measured.weights_below)
    # And every update reads its own pre- and postsynaptic activity.
    assert all(measured.pre) and all(measured.post)


def test_backprop_fails_the_locality_check():
    rule = probe("bp")
    measured = measure(rule)
    assert measured.weight_transport == "exact"
    assert not measured.no_weight_transport and not measured.layer_local
    # The same check passes fa/dfa and rejects bp claiming to be feedback alignment:
    lie = dataclasses.replace(rule.card(), weight_transport="random")
    assert any("weight transport" in problem for problem in verify(lie, measured))


def test_the_measurement_tells_the_rules_apart():
    fa, dfa, sign = (measure(probe(n)) for n in ("fa", "dfa", "sign"))
    assert fa.no_weight_transport and not fa.layer_local  # error chain through the layers above
    assert dfa.no_weight_transport and dfa.layer_local  # only its own activity and the broadcast
    assert sign.weight_transport == "sign" and not sign.no_weight_transport
    assert not any(dfa.above) and any(fa.above)
    assert all(dfa.feedback[:-1]) and not any(sign.feedback)


def test_a_wrong_card_is_caught():
    rule = probe("dfa")
    measured = measure(rule)
    wrong_reads = dataclasses.replace(rule.card(), reads=("pre", "post", "error_from_above"))
    assert any("error_from_above" in p for p in verify(wrong_reads, measured))
    missing_broadcast = dataclasses.replace(rule.card(), reads=("pre", "post"), global_signal=0)
    assert any("broadcast" in p for p in verify(missing_broadcast, measured))


def test_card_serialises():
    card = probe("dfa").card()
    data = card.to_dict()
    assert data["weight_transport"] == "random" and data["global_signal"] == 10
    assert data["locks_removed"] == ["backward"]
    assert "| weight transport | random |" in card.to_markdown()
    with pytest.raises(ValueError):
        dataclasses.replace(card, weight_transport="telepathy")


@pytest.mark.parametrize("name", names())
def test_card_text_fits_in_a_markdown_table_cell(name):
    # The cards table in docs/rules.md and the report puts every value in one cell: a "|" would split it.
    assert not [value for _, value in probe_rule(name).card().rows() if "|" in value]
