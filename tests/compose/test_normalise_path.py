"""`normalise_path`'s shortcut for plain paths answers what the full normalisation answers."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from carpool.compose import dispatch
from carpool.compose.dispatch import SubrequestRefused, normalise_path

_NEVER = re.compile(r"(?!)")


def _slow(path: str) -> str:
    shortcut = dispatch._PLAIN_PATH
    dispatch._PLAIN_PATH = _NEVER
    try:
        return normalise_path(path)
    finally:
        dispatch._PLAIN_PATH = shortcut


_SEGMENT = st.text(alphabet="abcXYZ09_~-.%/ é?#&=", max_size=12)


@given(st.builds(lambda parts: "/" + "/".join(parts), st.lists(_SEGMENT, max_size=5)))
def test_the_shortcut_agrees_with_the_full_normalisation(path: str) -> None:
    try:
        slow = _slow(path)
    except SubrequestRefused:
        return
    assert normalise_path(path) == slow


@pytest.mark.parametrize(
    "path",
    ["/grommets/12", "/widgets/3?include=grommets", "/a/b/", "/a//b", "/a/./b", "/a/../b"],
)
def test_examples(path: str) -> None:
    assert normalise_path(path) == _slow(path)
