"""The API's closed lists are spelled out as Literals (so the OpenAPI spec shows them);
they must stay the data contract's vocabularies."""

from __future__ import annotations

from typing import get_args

from nba.vocabulary import CHANNELS, INTERACTION_TYPES, OUTCOMES
from serving.schemas import Channel, Outcome, Reason


def test_api_vocabularies_are_the_contracts() -> None:
    assert get_args(Channel) == CHANNELS
    assert get_args(Reason) == INTERACTION_TYPES
    assert get_args(Outcome) == OUTCOMES
