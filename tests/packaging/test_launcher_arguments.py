"""Launcher options versus the arguments passed through to chroma-studio."""

from __future__ import annotations

from chroma_studio_launcher.__main__ import split_arguments


def test_options_before_the_subcommand_belong_to_the_launcher():
    assert split_arguments(["--console", "--backend", "cpu", "doctor", "--json"]) == (
        ["--console", "--backend", "cpu"],
        ["doctor", "--json"],
    )


def test_double_dash_hands_the_rest_to_the_app():
    assert split_arguments(["--auto", "--", "--help"]) == (["--auto"], ["--help"])


def test_no_arguments_opens_the_app():
    assert split_arguments([]) == ([], [])
