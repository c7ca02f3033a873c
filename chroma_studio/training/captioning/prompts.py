"""What each captioner is asked, per style and length, and how many tokens it may answer with.

Florence-2 is not prompted: it answers fixed tasks, and its three caption tasks are the three
lengths. The chat models (Qwen2.5-VL, JoyCaption) get one instruction per request; "both" makes
two requests, the description then the tags, so neither answer has to be split apart.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from chroma_studio.dataset.caption_shaping import MAX_TAGS

Kind = Literal["sentences", "tags"]

FLORENCE_TASKS = {"short": "<CAPTION>", "medium": "<DETAILED_CAPTION>", "long": "<MORE_DETAILED_CAPTION>"}
SYSTEM_PROMPT = "You are a helpful image captioner."

_SENTENCES = {
    "short": "Write a one-sentence caption for this image: the main subject and the setting.",
    "medium": (
        "Describe this image in two to four sentences: the main subject, what it is doing, the setting, "
        "the lighting and the kind of image (photo, painting, render)."
    ),
    "long": (
        "Write a detailed description of this image in one paragraph: the subject and its appearance, "
        "the pose or action, the clothing, the setting and background, the lighting, the colours, the "
        "composition and the kind of image. Describe only what is visible."
    ),
}
_TAGS = (
    "List up to {count} comma-separated tags for this image, the most important first: the subject, its "
    "features, the clothing, the setting, the style and the medium. Answer with the tags only."
)
_KINDS: dict[str, tuple[Kind, ...]] = {"natural": ("sentences",), "tags": ("tags",), "both": ("sentences", "tags")}
MAX_NEW_TOKENS: dict[Kind, dict[str, int]] = {
    "sentences": {"short": 48, "medium": 160, "long": 320},
    "tags": {"short": 64, "medium": 128, "long": 256},
}


@dataclass(frozen=True)
class Request:
    """One question to a captioner: ``kind`` says whether the answer is sentences or tags."""

    kind: Kind
    prompt: str  # a Florence-2 task token, or the instruction for a chat model
    max_new_tokens: int


def requests_for(family: str, style: str, length: str) -> list[Request]:
    """The questions that make a caption of ``style`` and ``length`` with a captioner of ``family``."""
    if length not in _SENTENCES:
        raise ValueError(f"'{length}' is not a caption length; use short, medium or long.")
    kinds = _KINDS[style]
    requests = []
    for kind in kinds:
        budget = MAX_NEW_TOKENS[kind][length]
        if family == "florence2":
            if kind == "tags":
                raise ValueError("Florence-2 cannot write tags")
            requests.append(Request(kind, FLORENCE_TASKS[length], budget))
        elif kind == "sentences":
            requests.append(Request(kind, _SENTENCES[length], budget))
        else:
            requests.append(Request(kind, _TAGS.format(count=MAX_TAGS[length]), budget))
    return requests


def conversation(family: str, prompt: str) -> list[dict[str, object]]:
    """The chat messages for a chat model: Qwen2.5-VL takes typed content with an image part;
    JoyCaption's template takes plain strings and places the image itself."""
    if family == "qwen2_5_vl":
        return [
            {"role": "system", "content": [{"type": "text", "text": SYSTEM_PROMPT}]},
            {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": prompt}]},
        ]
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": prompt}]
