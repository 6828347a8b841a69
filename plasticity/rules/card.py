"""The plausibility card, where the rules import it from: its vocabulary lives in `plasticity.card`
(no torch), so that the report reads cards from results files without importing a rule."""

from plasticity.card import LOCKS, READS, TRANSPORTS, PlausibilityCard, cards_table

__all__ = ["LOCKS", "READS", "TRANSPORTS", "PlausibilityCard", "cards_table"]
