from __future__ import annotations

import pytest

from chroma_studio.dataset.caption_ops import (
    CaptionChange,
    OperationError,
    add_prefix,
    add_suffix,
    add_trigger_word,
    contains_word,
    find_replace,
    normalise_whitespace,
    preview_operation,
    remove_trigger_word,
)


@pytest.mark.parametrize(
    ("before", "after"),
    [
        ("a woman in a park", "ohwx, a woman in a park"),
        ("", "ohwx"),
        ("ohwx, a woman", "ohwx, a woman"),  # already there
        ("a photo of ohwx smiling", "a photo of ohwx smiling"),
        ("ohwxy on a boat", "ohwx, ohwxy on a boat"),  # a longer word is not the trigger
        (", leading comma", "ohwx, leading comma"),
    ],
)
def test_add_trigger_word_at_start(before, after):
    assert add_trigger_word("ohwx")(before) == after


def test_add_trigger_word_at_end_with_custom_separator():
    op = add_trigger_word(" ohwx ", position="end", separator=" ")

    assert op("a woman,") == "a woman ohwx"
    assert op.description == "Add trigger word 'ohwx'"


@pytest.mark.parametrize(
    ("before", "after"),
    [
        ("ohwx, a woman", "a woman"),
        ("a woman, ohwx", "a woman"),
        ("a, ohwx, b", "a, b"),
        ("a photo of ohwx woman", "a photo of woman"),
        ("a photo of ohwx.", "a photo of."),
        ("ohwx", ""),
        ("ohwx, ohwx, a cat", "a cat"),
        ("a cat, ohwx\nsecond line, ohwx, end", "a cat\nsecond line, end"),
        ("ohwxy stays, OHWX stays", "ohwxy stays, OHWX stays"),
    ],
)
def test_remove_trigger_word(before, after):
    assert remove_trigger_word("ohwx")(before) == after


def test_remove_trigger_word_ignoring_case():
    assert remove_trigger_word("ohwx", ignore_case=True)("OHWX, a cat, Ohwx") == "a cat"


def test_trigger_word_with_punctuation_matches_as_a_whole():
    assert contains_word("a photo of <sks> dog", "<sks>")
    assert not contains_word("a photo of sks dog", "<sks>")
    assert remove_trigger_word("<sks>")("<sks>, a dog") == "a dog"


def test_prefix_and_suffix_are_not_added_twice():
    prefix, suffix = add_prefix("photo of ohwx, "), add_suffix(", film grain")

    assert prefix("a cat") == "photo of ohwx, a cat"
    assert prefix("photo of ohwx, a cat") == "photo of ohwx, a cat"
    assert suffix("a cat") == "a cat, film grain"
    assert suffix(suffix("a cat")) == "a cat, film grain"
    assert prefix("") == "photo of ohwx" and suffix("") == "film grain"  # no dangling separator


def test_find_replace_plain_treats_the_text_literally():
    op = find_replace("a.b", r"\1 $x")

    assert op("a.b and axb") == r"\1 $x and axb"


def test_find_replace_plain_ignoring_case():
    assert find_replace("Cat", "dog", ignore_case=True)("cat, CAT, Cat") == "dog, dog, dog"
    assert find_replace("Cat", "dog")("cat, Cat") == "cat, dog"


def test_find_replace_regex_with_groups():
    op = find_replace(r"(\w+) hair", r"hair: \1", regex=True)

    assert op("red hair, blue eyes") == "hair: red, blue eyes"


@pytest.mark.parametrize(
    ("find", "replace", "message"),
    [
        ("(unclosed", "x", "not a valid regular expression"),
        ("[a-", "x", "position"),
        ("(a)", r"\2", "replacement"),
        ("(a)", r"\g<name>", "replacement"),
    ],
)
def test_bad_regex_or_replacement_is_a_clear_error(find, replace, message):
    with pytest.raises(OperationError, match=message):
        find_replace(find, replace, regex=True)


@pytest.mark.parametrize(
    "make", [lambda: add_trigger_word("  "), lambda: remove_trigger_word(""), lambda: add_prefix(" "),
             lambda: add_suffix(""), lambda: find_replace("", "x"), lambda: add_trigger_word("x", position="middle")]
)  # fmt: skip
def test_empty_or_invalid_settings_are_refused(make):
    with pytest.raises(OperationError):
        make()


def test_normalise_whitespace():
    op = normalise_whitespace()

    assert op("  a \t cat ,\u00a0on  a mat .\n\n  second   line  \n") == "a cat, on a mat.\nsecond line"
    assert op("clean, caption") == "clean, caption"


def test_preview_lists_only_changed_captions_and_reads_only(tmp_path):
    (tmp_path / "has.txt").write_text("ohwx, a dog")
    (tmp_path / "lacks.txt").write_text("a cat\r\n")
    (tmp_path / "bad.txt").write_bytes("\u00e9t\u00e9".encode("cp1252"))
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    paths = [tmp_path / n for n in ("has.txt", "lacks.txt", "missing.txt", "bad.txt", "lacks.txt")]

    preview = preview_operation(paths, add_trigger_word("ohwx"))

    assert preview.changes == [
        CaptionChange(tmp_path / "lacks.txt", "a cat", "ohwx, a cat"),
        CaptionChange(tmp_path / "missing.txt", "", "ohwx"),
    ]
    assert [(path, before, after) for path, before, after in preview.changes]  # plain tuples too
    assert preview.unchanged == 1
    assert [e.path.name for e in preview.skipped] == ["bad.txt"]
    assert preview.description == "Add trigger word 'ohwx'"
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before
