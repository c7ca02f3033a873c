"""The one-line settings summary mentions blocks streamed from RAM and a run on several GPUs."""

from chroma_studio.gui import hardware_adapter
from chroma_studio.gui.machine_info import describe_settings
from chroma_studio.gui.widgets.machine_header import MachineHeaderWidget
from chroma_studio.hardware import detect

GiB = 2**30
SETTINGS = {
    "model_flavour": "base",
    "base_model_precision": "int8-quanto",
    "lora_rank": 8,
    "resolution": 1024,
    "train_batch_size": 1,
    "blocks_to_swap": 52,
}


def test_the_short_summary_says_how_many_blocks_stream():
    assert describe_settings(SETTINGS, short=True) == "Chroma base · int8 · rank 8 · 1024 px · streams 52 of 57 blocks"
    assert "streams" not in describe_settings({**SETTINGS, "blocks_to_swap": 0}, short=True)
    assert "Blocks streamed from RAM: streams 52 of 57 blocks" in describe_settings(SETTINGS)


def test_the_short_summary_says_on_how_many_gpus():
    two = describe_settings({**SETTINGS, "blocks_to_swap": 0, "num_processes": 2}, short=True)
    assert two == "Chroma base · int8 · rank 8 · 1024 px · on 2 GPUs"
    assert "GPU" not in describe_settings({**SETTINGS, "num_processes": 1}, short=True)


def test_the_header_shows_the_streaming_an_8_gb_laptop_is_recommended(qtbot, monkeypatch):
    gpu = detect.DeviceInfo(
        "cuda",
        0,
        "NVIDIA GeForce RTX 4060 Laptop GPU",
        8 * GiB,
        int(7.5 * GiB),
        compute_capability=(8, 9),
        pcie_gen=4,
        pcie_width=8,
    )
    cpu = detect.DeviceInfo("cpu", 0, "x86_64", 32 * GiB, 24 * GiB)
    machine = detect.MachineInfo((gpu, cpu), 32 * GiB, 24 * GiB, 500 * GiB, 500 * GiB, "Linux", "3.11")
    monkeypatch.setattr(detect, "detect_machine", lambda output_dir=None: machine)
    summary = hardware_adapter.summarize()
    blocks = summary.recommended.settings["blocks_to_swap"]
    assert 0 < blocks < 57  # the hardware layer's own answer: an 8 GB card streams at 1024 px
    header = MachineHeaderWidget()
    qtbot.addWidget(header)
    header.set_summary(summary)
    assert header.recommendation_label.text().endswith(f" · 1024 px · streams {blocks} of 57 blocks")
