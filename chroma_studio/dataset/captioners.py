"""The captioners Chroma Studio offers, what each needs, and which ones are on this computer.

Torch-free: the app reads this to show the choice, the size on disk and the license before a
download, and the Machine page lists and deletes downloaded captioners through it. The engine
(``training/captioning``) loads the chosen one by its transformers class, never with remote code.

The set, and why:

- ``florence-2-large`` (0.77B, MIT): the fast one. Plain captions in three lengths from task
  tokens, fast enough on a CPU or a Mac; the ``florence-community`` copy loads natively in
  transformers (Microsoft's original repository needs remote code). It cannot be prompted, so it
  writes no tag lists: only the natural style.
- ``qwen2.5-vl-3b`` (3.75B): a prompted model for 8-12 GB GPUs; writes sentences, tags or both.
  Its weights come under the Qwen Research License (non-commercial), which the app shows.
- ``qwen2.5-vl-7b`` (8.3B, Apache-2.0): detailed and freely licensed, for 24 GB GPUs.
- ``joycaption-beta-one`` (8.5B, Llama 3.1 Community License): made for captioning training
  images (including what general VLMs refuse to describe); bf16 on 24 GB, 4-bit NF4 (bitsandbytes,
  CUDA only) on 8-12 GB.
- ``demo`` / ``demo-florence`` / ``demo-qwen``: tiny random models of the LLaVA, Florence-2 and
  Qwen2.5-VL classes, built in code, offline: the whole path runs end to end and the captions are
  gibberish.

Sizes on disk are the repositories' weight files (safetensors) plus tokenizer files, rounded; the
memory figures are the weights at that dtype plus the working memory of one image's generation.
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

logger = logging.getLogger(__name__)

Style = Literal["natural", "tags", "both"]
Dtype = Literal["fp32", "bf16", "fp16", "nf4"]
Family = Literal["florence2", "qwen2_5_vl", "llava"]
ALL_STYLES: tuple[Style, ...] = ("natural", "tags", "both")
GB = 1_000_000_000
GIB = 1 << 30


@dataclass(frozen=True)
class License:
    name: str
    url: str
    commercial_use: bool = True  # False: the weights' terms forbid commercial use

    def __str__(self) -> str:
        return f"{self.name} ({self.url})"


@dataclass(frozen=True)
class Captioner:
    """One captioner: where it comes from, what it can write, what it needs."""

    name: str  # what CaptionJob.model and --model take
    label: str
    repo_id: str  # on the Hugging Face Hub; "" for the demo captioners, built in code
    model_class: str  # the transformers class that loads it (never remote code)
    family: Family  # how it is prompted
    parameters: int
    size_bytes: int  # on disk once downloaded
    license: License
    styles: tuple[Style, ...]
    memory: Mapping[Dtype, int]  # bytes of device memory (or RAM on a CPU) needed, by dtype
    runs_on_cpu: bool  # fast enough on a CPU or a Mac for a folder of images
    description: str
    styles_note: str = ""  # why a style is missing, said where the style would be chosen
    demo: bool = False
    revision: str | None = None
    requires: tuple[str, ...] = ()  # Python packages it needs beyond Chroma Studio's own

    def missing_packages(self) -> list[str]:
        """The packages of ``requires`` that are not installed (checked without importing them)."""
        return [name for name in self.requires if importlib.util.find_spec(name) is None]

    def supports(self, style: str) -> bool:
        return style in self.styles

    def style_problem(self, style: str) -> str | None:
        """Why ``style`` cannot be used with this captioner, or None when it can."""
        if self.supports(style):
            return None
        if style not in ALL_STYLES:
            return f"'{style}' is not a caption style; use one of {', '.join(ALL_STYLES)}."
        note = f" {self.styles_note}" if self.styles_note else ""
        return f"{self.label} cannot write the '{style}' style.{note}"

    def dtypes(self) -> list[Dtype]:
        """The dtypes it can run in, the smallest memory first."""
        return sorted(self.memory, key=lambda dtype: self.memory[dtype])


_FLORENCE_NOTE = (
    "Florence-2 answers fixed tasks and cannot be asked for a list of tags; choose a Qwen2.5-VL or "
    "JoyCaption captioner for tags."
)
_MIT = License("MIT", "https://huggingface.co/florence-community/Florence-2-large/blob/main/LICENSE")
_APACHE = License("Apache-2.0", "https://www.apache.org/licenses/LICENSE-2.0")
_QWEN_RESEARCH = License(
    "Qwen Research License", "https://huggingface.co/Qwen/Qwen2.5-VL-3B-Instruct/blob/main/LICENSE", False
)
_LLAMA = License("Llama 3.1 Community License", "https://www.llama.com/llama3_1/license/")
_DEMO_LICENSE = License("Apache-2.0 (built by Chroma Studio)", "https://www.apache.org/licenses/LICENSE-2.0")


@dataclass(frozen=True)
class _Architecture:
    """What every captioner of one transformers class shares: how it loads, is prompted, what it writes."""

    family: Family
    model_class: str
    styles: tuple[Style, ...]
    styles_note: str = ""


_FLORENCE2 = _Architecture("florence2", "Florence2ForConditionalGeneration", ("natural",), _FLORENCE_NOTE)
_QWEN2_5_VL = _Architecture("qwen2_5_vl", "Qwen2_5_VLForConditionalGeneration", ALL_STYLES)
_LLAVA = _Architecture("llava", "LlavaForConditionalGeneration", ALL_STYLES)


def _captioner(architecture: _Architecture, **facts: Any) -> Captioner:
    """A captioner of ``architecture``: the architecture's facts and its own."""
    return Captioner(
        family=architecture.family,
        model_class=architecture.model_class,
        styles=architecture.styles,
        styles_note=architecture.styles_note,
        **facts,
    )


def _demo(architecture: _Architecture, name: str, label: str, description: str, **facts: Any) -> Captioner:
    """A demo captioner: built in code (nothing to download), tiny and random, fine on a CPU."""
    return _captioner(
        architecture,
        name=name,
        label=label,
        repo_id="",
        license=_DEMO_LICENSE,
        memory={"fp32": 64 << 20},
        runs_on_cpu=True,
        description=description,
        demo=True,
        **facts,
    )


CAPTIONERS: dict[str, Captioner] = {
    c.name: c
    for c in (
        _captioner(
            _FLORENCE2,
            name="florence-2-large",
            label="Florence-2 large (fast)",
            repo_id="florence-community/Florence-2-large",
            parameters=770_000_000,
            size_bytes=int(3.29 * GB),  # the large checkpoint's float32 safetensors, as its copies list it
            license=_MIT,
            memory={"fp16": int(2.2 * GIB), "bf16": int(2.2 * GIB), "fp32": int(3.8 * GIB)},
            runs_on_cpu=True,
            description="Short to detailed plain captions; runs on a CPU or a Mac.",
        ),
        _captioner(
            _QWEN2_5_VL,
            name="qwen2.5-vl-3b",
            label="Qwen2.5-VL 3B",
            repo_id="Qwen/Qwen2.5-VL-3B-Instruct",
            parameters=3_750_000_000,
            size_bytes=int(7.52 * GB),
            license=_QWEN_RESEARCH,
            memory={"bf16": int(8.5 * GIB), "nf4": int(3.8 * GIB)},
            runs_on_cpu=False,
            description="Prompted descriptions and tags for 8-12 GB GPUs (non-commercial license).",
        ),
        _captioner(
            _QWEN2_5_VL,
            name="qwen2.5-vl-7b",
            label="Qwen2.5-VL 7B",
            repo_id="Qwen/Qwen2.5-VL-7B-Instruct",
            parameters=8_290_000_000,
            size_bytes=int(16.6 * GB),
            license=_APACHE,
            memory={"bf16": int(17.5 * GIB), "nf4": int(7.0 * GIB)},
            runs_on_cpu=False,
            description="Detailed descriptions and tags, freely licensed; for 24 GB GPUs.",
        ),
        _captioner(
            _LLAVA,
            name="joycaption-beta-one",
            label="JoyCaption Beta One",
            repo_id="fancyfeast/llama-joycaption-beta-one-hf-llava",
            parameters=8_480_000_000,
            size_bytes=int(17.0 * GB),
            license=_LLAMA,
            memory={"bf16": int(18.0 * GIB), "nf4": int(7.5 * GIB)},
            runs_on_cpu=False,
            description="Made for training captions, including subjects general models avoid; 8B.",
        ),
        _demo(
            _LLAVA,
            "demo",
            "Demo (tiny, random: gibberish captions)",
            "A tiny random model to try captioning without a download; its captions are gibberish.",
            parameters=200_000,
            size_bytes=2_000_000,
        ),
        _demo(
            _FLORENCE2,
            "demo-florence",
            "Demo Florence-2 (tiny, random: gibberish captions)",
            "A tiny random Florence-2 to try the fast captioner's path without a download.",
            parameters=200_000,
            size_bytes=2_000_000,
        ),
        _demo(
            _QWEN2_5_VL,
            "demo-qwen",
            "Demo Qwen2.5-VL (tiny, random: gibberish captions)",
            "A tiny random Qwen2.5-VL to try the Qwen captioners' path without a download.",
            parameters=40_000,
            size_bytes=200_000,  # the folder it builds: 172 kB
        ),
    )
}


class UnknownCaptioner(ValueError):
    """A captioner name that is not in the catalogue."""


def captioner(name: str) -> Captioner:
    """The captioner called ``name``; raises ``UnknownCaptioner`` listing the names there are."""
    try:
        return CAPTIONERS[name]
    except KeyError:
        raise UnknownCaptioner(
            f"there is no captioner called '{name}'; choose one of {', '.join(CAPTIONERS)}."
        ) from None


def captioner_names(include_demo: bool = True) -> list[str]:
    return [name for name, c in CAPTIONERS.items() if include_demo or not c.demo]


# -- which one fits this machine ------------------------------------------------------------------
Device = Literal["cuda", "rocm", "mps", "cpu"]
HEADROOM = 0.9  # of the memory the device has: the rest is the driver's, the desktop's, other programs'


@dataclass(frozen=True)
class CaptionerChoice:
    """The captioner recommended for a machine, the dtype it runs in, and why."""

    name: str
    dtype: Dtype
    reason: str


_QUALITY_ORDER = ("joycaption-beta-one", "qwen2.5-vl-7b", "qwen2.5-vl-3b")


def recommend_captioner(device: str, device_memory: int, ram: int = 0) -> CaptionerChoice:
    """The best captioner that fits: ``device`` is "cuda", "rocm", "mps" or "cpu"; memory in bytes.

    ``device_memory`` is the GPU's memory (for "mps" and "cpu" the memory the model can use: the
    unified memory or the RAM). NF4 needs bitsandbytes, which only CUDA offers here. A CPU or a
    Mac gets Florence-2: the 3-8B models take minutes per image there.
    """
    usable = int(max(device_memory, 0) * HEADROOM)
    fast = CAPTIONERS["florence-2-large"]
    if device in ("cuda", "rocm"):
        dtypes: tuple[Dtype, ...] = ("bf16", "nf4") if device == "cuda" else ("bf16",)
        for name in _QUALITY_ORDER:  # the better captioner quantized before the lesser one in bf16
            for dtype in dtypes:
                need = CAPTIONERS[name].memory.get(dtype)
                if need is not None and need <= usable:
                    return CaptionerChoice(
                        name, dtype, f"{CAPTIONERS[name].label} in {dtype} fits in {_gib(usable)} of GPU memory."
                    )
        return CaptionerChoice(
            fast.name, "fp16", f"only {_gib(usable)} of GPU memory: the fast captioner is the one that fits."
        )
    if device == "mps":
        return CaptionerChoice(fast.name, "fp16", "on a Mac the fast captioner takes seconds per image.")
    return CaptionerChoice(fast.name, "fp32", "without a GPU the fast captioner is the one that runs in time.")


def _gib(count: int) -> str:
    return f"{count / GIB:.1f} GB"


# -- downloaded captioners (the Hugging Face cache) -----------------------------------------------
@dataclass(frozen=True)
class DownloadedCaptioner:
    captioner: Captioner
    size_bytes: int  # on disk, every cached revision together
    path: Path
    revisions: tuple[str, ...] = field(default_factory=tuple)


def downloaded_captioners(cache_dir: str | Path | None = None) -> list[DownloadedCaptioner]:
    """The catalogue's captioners found in the Hugging Face cache, with their size on disk.

    ``cache_dir`` defaults to the hub's own (``HF_HUB_CACHE`` / ``HF_HOME``). A cache that cannot
    be read is reported in the log and lists nothing.
    """
    from huggingface_hub import CacheNotFound, scan_cache_dir

    try:
        info = scan_cache_dir(cache_dir)
    except CacheNotFound:
        return []
    except OSError as exc:
        logger.warning("the model cache cannot be read: %s", exc)
        return []
    by_repo = {c.repo_id: c for c in CAPTIONERS.values() if c.repo_id}
    found = []
    for repo in info.repos:
        known = by_repo.get(repo.repo_id)
        if known is not None and repo.repo_type == "model":
            revisions = tuple(sorted(r.commit_hash for r in repo.revisions))
            found.append(DownloadedCaptioner(known, repo.size_on_disk, Path(repo.repo_path), revisions))
    return sorted(found, key=lambda d: list(CAPTIONERS).index(d.captioner.name))


def delete_captioner(name: str, cache_dir: str | Path | None = None) -> int:
    """Delete every cached revision of the captioner ``name``; the bytes freed (0 when absent)."""
    from huggingface_hub import scan_cache_dir

    wanted = captioner(name)
    for item in downloaded_captioners(cache_dir):
        if item.captioner.name == wanted.name:
            strategy = scan_cache_dir(cache_dir).delete_revisions(*item.revisions)
            strategy.execute()
            logger.info("deleted the captioner %s (%d bytes)", name, strategy.expected_freed_size)
            return int(strategy.expected_freed_size)
    return 0


def describe_download(name: str) -> str:
    """What the app and the command line say before a download: size on disk and license."""
    c = captioner(name)
    if c.demo:
        return f"{c.label}: built on this computer, nothing to download."
    terms = "" if c.license.commercial_use else " Its terms forbid commercial use."
    missing = c.missing_packages()
    needs = f" It needs {' and '.join(missing)}, which is not installed." if missing else ""
    return f"{c.label} downloads {c.size_bytes / GB:.1f} GB from {c.repo_id}; license: {c.license}.{terms}{needs}"


def total_size(items: Iterable[DownloadedCaptioner]) -> int:
    return sum(item.size_bytes for item in items)
