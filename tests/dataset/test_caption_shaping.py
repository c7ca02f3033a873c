"""Caption shaping: style composition, length, trigger placement, prefix/suffix, tidying."""

from __future__ import annotations

import sys

import pytest

from chroma_studio.dataset.caption_shaping import (
    MAX_TAGS,
    add_affixes,
    complete_sentences,
    compose,
    parse_tags,
    place_trigger,
    shape_caption,
    tidy,
)


# -- trigger after the class word -----------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("A photo of the dog on grass.", "A photo of a sks dog on grass."),
        ("a dog runs. The dog jumps.", "a sks dog runs. The dog jumps."),  # only the first
        ("The dog sleeps.", "A sks dog sleeps."),  # the article keeps its capital
        ("An old photo of an dog.", "An old photo of a sks dog."),
        ("A photo of THE Dog.", "A photo of a sks Dog."),  # any case; the class word as written
        ("the   dog", "a sks dog"),
    ],
)
def test_the_first_article_and_class_word_become_a_trigger_class(text, expected):
    assert place_trigger(text, "sks", "dog") == expected


def test_the_class_word_matches_whole_words_only():
    # "dogs" and "hotdog" are not "dog": no "a/the dog" -> the trigger goes first
    assert place_trigger("A photo of the dogs and a hotdog.", "sks", "dog") == "sks, A photo of the dogs and a hotdog."


def test_a_class_word_without_an_article_puts_the_trigger_first():
    assert place_trigger("two dogs, dog on grass", "sks", "dog") == "sks, two dogs, dog on grass"


def test_without_a_class_word_the_trigger_goes_first():
    assert place_trigger("a cat on a mat", "ohwx") == "ohwx, a cat on a mat"
    assert place_trigger("", "ohwx") == "ohwx"


def test_a_caption_that_has_the_trigger_is_left_alone():
    assert place_trigger("a photo of a sks dog", "sks", "dog") == "a photo of a sks dog"
    assert place_trigger("SKS, a dog", "sks") == "SKS, a dog"


def test_no_trigger_changes_nothing():
    assert place_trigger("a dog", "", "dog") == "a dog"
    assert place_trigger("a dog", "  ") == "a dog"


def test_a_class_word_with_regex_characters_is_taken_literally():
    assert place_trigger("a photo of the c++ book", "sks", "c++ book") == "a photo of a sks c++ book"
    assert place_trigger("a photo of the cxx book", "sks", "c.. book") == "sks, a photo of the cxx book"


# -- styles and length -------------------------------------------------------------------------------
def test_both_is_sentences_then_tags():
    text = compose("both", "A dog on grass.", ["dog", "grass", "outdoors"])
    assert text == "A dog on grass. dog, grass, outdoors"


def test_natural_and_tags_keep_only_their_part():
    assert compose("natural", "A dog.", ["dog"]) == "A dog."
    assert compose("tags", "A dog.", ["dog", "grass"]) == "dog, grass"


def test_an_unknown_style_is_refused_by_name():
    with pytest.raises(ValueError, match="'poem' is not a caption style"):
        compose("poem", "A dog.")


def test_a_sentence_cut_off_by_the_token_limit_is_dropped():
    assert complete_sentences("A red car. It is parked on the") == "A red car."
    assert complete_sentences('He said "hi." Then he') == 'He said "hi."'


def test_a_text_with_no_complete_sentence_is_kept():
    assert complete_sentences("a red car parked on the") == "a red car parked on the"


def test_tags_are_split_trimmed_and_deduplicated():
    raw = "- Dog, grass;\n* dog , 'outdoors'.,, sunny day\n#blue sky"
    assert parse_tags(raw) == ["Dog", "grass", "outdoors", "sunny day", "blue sky"]


def test_the_length_limits_the_number_of_tags():
    raw = ", ".join(f"tag{i}" for i in range(100))
    for length, limit in MAX_TAGS.items():
        caption = shape_caption(tags=raw, style="tags", length=length)
        assert len(caption.split(", ")) == limit
    assert MAX_TAGS["short"] < MAX_TAGS["medium"] < MAX_TAGS["long"]


# -- prefix, suffix, tidy ----------------------------------------------------------------------------
def test_prefix_and_suffix_are_joined_with_a_comma_unless_they_carry_a_separator():
    assert add_affixes("a dog", "photo", "film grain") == "photo, a dog, film grain"
    assert add_affixes("a dog", "photo of ", ". film grain") == "photo of a dog. film grain"
    assert add_affixes("", "photo", "") == "photo"


def test_tidy_fixes_spaces_and_commas():
    assert tidy("  a   dog ,on\tgrass ,, , outdoors ;  ") == "a dog, on grass, outdoors"
    assert tidy("line one\r\n\r\nline two") == "line one line two"


def test_shape_caption_does_everything_in_order():
    caption = shape_caption(
        "The dog runs on grass . It is a sunny day. The dog then",
        "dog, grass , dog, sunny",
        style="both",
        length="short",
        trigger="sks",
        class_word="dog",
        prefix="photo",
        suffix="film grain",
    )
    assert caption == "photo, A sks dog runs on grass. It is a sunny day. dog, grass, sunny, film grain"


def test_tags_style_puts_the_trigger_first():
    assert shape_caption(tags="dog, grass", style="tags", trigger="sks", class_word="dog") == "sks, dog, grass"


def test_shaping_is_torch_free():
    import subprocess

    code = "import sys, chroma_studio.dataset.caption_shaping; assert 'torch' not in sys.modules"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
