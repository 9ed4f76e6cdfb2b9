from __future__ import annotations

import ast

import pytest

from harness.util.pysource import assigned_once, decode, literal_truth


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


def test_a_parse_overlapped_by_code_outside_the_lock_is_tried_again(monkeypatch):
    """CPython 3.11 counts ast.parse's depth per interpreter: a parse outside the harness's lock (the
    traceback module's) overlapping one of ours makes ours fail with the mismatch, once."""
    import ast

    from harness.util import pysource

    real, calls = ast.parse, []

    def overlapped(source, **kwargs):
        calls.append(source)
        if len(calls) == 1:
            raise SystemError("AST constructor recursion depth mismatch (before=36, after=39)")
        return real(source, **kwargs)

    monkeypatch.setattr(ast, "parse", overlapped)
    assert type(pysource.parse("x = 1").body[0]).__name__ == "Assign" and len(calls) == 2
    monkeypatch.setattr(ast, "parse", lambda source, **kwargs: (_ for _ in ()).throw(SystemError("other")))
    with pytest.raises(SystemError, match="other"):
        pysource.parse("x = 1")


@pytest.mark.parametrize(
    ("test", "expected"),
    [
        ('name == "dropout"', True),
        ('name != "dropout"', False),
        ('name in ("bn", "dropout")', True),
        ('name not in ("bn", "dropout")', False),
        ("flag", True),
        ("not flag", False),
        ("other == 3", None),  # a name the call does not set: only a run could tell
        ("name.startswith('d')", None),
        ("name in 3", None),
    ],
)
def test_a_test_is_decided_only_for_names_bound_to_literals(test, expected):
    values = {"name": ast.Constant("dropout"), "flag": ast.Constant(True), "other": ast.Name("x")}
    assert literal_truth(ast.parse(test, mode="eval").body, values) is expected


def test_an_assignment_in_a_top_level_try_is_assigned_at_top_level_and_a_second_one_is_not_once():
    """The extracted module keeps ``datagen = ImageDataGenerator(…)`` in a ``try:``: still the module's."""
    tree = ast.parse("try:\n    datagen = make(10)\nexcept Exception:\n    pass\nEPOCHS = 5\nEPOCHS = 6\n")
    found = assigned_once([(None, tree)])
    assert ast.unparse(found["datagen"]) == "make(10)" and "EPOCHS" not in found
