from __future__ import annotations

import pytest

from harness.util.pysource import decode


def test_decode_drops_a_byte_order_mark():
    assert decode(b"\xef\xbb\xbfx = 1\n") == "x = 1\n"


def test_decode_honours_a_declaration_on_line_two_and_neutralises_it():
    text = decode(b"#!/usr/bin/env python\n# vim: set fileencoding=latin-1 :\ns = '\xe9'\n")
    assert text.splitlines()[2] == "s = 'é'" and len(text.splitlines()) == 3
    assert "coding" not in text  # the UTF-8 copy must not be read as latin-1 again


@pytest.mark.parametrize(
    "data, reason",
    [
        (b"s = '\xe9'\n", "not UTF-8 text"),
        (b"\xef\xbb\xbf# coding: latin-1\n", "encoding problem"),
        (b"# coding: klingon\n", "unknown encoding"),
    ],
)
def test_decode_says_why_bytes_are_not_source(data, reason):
    with pytest.raises(ValueError, match=reason):
        decode(data)
