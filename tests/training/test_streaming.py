"""Streaming the frozen blocks from host RAM (``blocks_to_swap``), on the demo transformer on the CPU.

Host and device are both the CPU here, so losses alone cannot tell a broken streamer from a
working one: these tests look at the mechanism itself (loads per step, which tensor a block runs
with, which copies are made, where the LoRA lives).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from chroma_studio.protocol import events as ev
from chroma_studio.protocol.control import TrainingControl
from chroma_studio.protocol.events import null_sink
from chroma_studio.training.errors import TrainingError
from chroma_studio.training.grad_checkpointing import disable_masked_checkpointing, enable_masked_checkpointing
from chroma_studio.training.loading import Loader, resolve_source, training_dtype
from chroma_studio.training.lora import lora_parameters
from chroma_studio.training.prepare import build_transformer
from chroma_studio.training.step import StepInputs, flow_matching_loss
from chroma_studio.training.streaming import (
    BlockStreamer,
    check_streaming,
    place_resident,
    storages,
    streamed_blocks,
    transformer_blocks,
)
from chroma_studio.training.text import collate_text
from chroma_studio.training.trainer import run_training

CPU = torch.device("cpu")


@pytest.fixture
def build(make_config):
    """The demo transformer as the engine builds it (``build_transformer``): quantized as asked, the
    LoRA, streaming of the last ``streamed`` blocks, checkpointing; and its streamer."""

    def make(streamed: int, precision: str = "no_change", mixed: str = "no", checkpointing: bool = True):
        config = make_config(
            blocks_to_swap=streamed,
            base_model_precision=precision,
            mixed_precision=mixed,
            gradient_checkpointing=checkpointing,
            flux_lora_target="all+ffs",
        )
        loader = Loader(resolve_source(config), null_sink, TrainingControl())
        loader.prepare()
        transformer, _, streamer = build_transformer(config, loader, CPU, training_dtype(mixed), None)
        return transformer, streamer

    return make


def batches(count: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    text, mask = collate_text([torch.randn(6, 32, generator=g)])
    for _ in range(count):
        latents, noise = torch.randn(1, 16, 8, 8, generator=g), torch.randn(1, 16, 8, 8, generator=g)
        yield StepInputs(latents, text, mask, torch.rand(1, generator=g), noise)


def train(transformer, steps: int, dtype=torch.float32) -> list[float]:
    optimizer = torch.optim.AdamW(lora_parameters(transformer), lr=1e-2)
    losses = []
    for batch in batches(steps):
        loss = flow_matching_loss(transformer, batch, dtype=dtype)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(loss.item())
    return losses


def host_pointers(streamer: BlockStreamer) -> set[int]:
    return {t.data_ptr() for slots in streamer.slots for slot in slots for t in storages(slot.host)}


# -- the mechanism --------------------------------------------------------------------------------


def test_the_last_blocks_stream_and_each_loads_twice_per_step_with_checkpointing(build):
    transformer, streamer = build(3)
    blocks = transformer_blocks(transformer)
    assert streamer.blocks == blocks[1:]  # the last 3 of 4, in the order they run
    assert streamer.report().describe().startswith("Streaming 3 of 4 blocks from RAM")
    train(transformer, 1)
    assert dict(streamer.loads) == {0: 2, 1: 2, 2: 2}  # the forward, then the recompute in backward
    train(transformer, 2)
    assert dict(streamer.loads) == {0: 6, 1: 6, 2: 6}
    assert streamer.bytes_copied == 6 * sum(streamer.block_bytes) > 0
    with torch.no_grad():  # a sample's forward: one load per block
        transformer(**_inputs())
    assert dict(streamer.loads) == {0: 7, 1: 7, 2: 7}


def test_checkpointing_wraps_streaming_so_the_recompute_loads_again(build):
    transformer, streamer = build(2)
    batch = next(batches(1))
    loss = flow_matching_loss(transformer, batch, dtype=torch.float32)
    assert dict(streamer.loads) == {0: 1, 1: 1}  # the forward alone
    loss.backward()
    assert dict(streamer.loads) == {0: 2, 1: 2}  # backward recomputed each block with its weights loaded

    # The other order is refused: a streamer outside the checkpoint would not run in the recompute.
    block = transformer_blocks(transformer)[0]
    with pytest.raises(ValueError, match="before gradient checkpointing"):
        BlockStreamer([block], CPU, total_blocks=4).install()
    # Turning checkpointing off gives back the streaming forward, not the class's.
    disable_masked_checkpointing(transformer)
    with torch.no_grad():
        transformer(**_inputs())
    assert dict(streamer.loads) == {0: 3, 1: 3}
    enable_masked_checkpointing(transformer)
    train(transformer, 1)
    assert dict(streamer.loads) == {0: 5, 1: 5}


@pytest.mark.parametrize("precision", ["no_change", "int4-quanto"])
def test_a_streamed_block_runs_on_a_separate_copy_and_holds_the_host_copy_after(build, precision):
    transformer, streamer = build(1, precision)
    block = streamer.blocks[0]
    layer = block.proj_out.base_layer  # a frozen Linear inside the last block, under its LoRA
    host = layer.weight
    host_storage = {t.data_ptr() for t in storages(host)}
    seen = []
    layer.register_forward_pre_hook(lambda module, args: seen.append(module.weight))
    train(transformer, 1)
    assert len(seen) == 2  # forward and recompute
    for during in seen:
        assert during is not host
        assert {t.data_ptr() for t in storages(during)}.isdisjoint(host_storage)
        assert type(during) is type(host)  # a quantized weight stays quantized, in the same layout
        assert torch.equal(_plain(during), _plain(host))
    assert layer.weight is host  # released: the host copy is back, the device copy dropped
    assert sum(1 for _ in block.parameters() if _.requires_grad) > 0


def test_no_weight_is_ever_copied_back_to_the_host(build):
    transformer, streamer = build(2, "int8-quanto")
    hosts = host_pointers(streamer)
    before = {p: None for p in hosts}
    values = [[_plain(s.host).clone() for s in slots] for slots in streamer.slots]

    class Copies(TorchDispatchMode):
        def __init__(self):
            super().__init__()
            self.into_host, self.from_host = 0, 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            if func is torch.ops.aten.copy_.default:
                dst, src = args[0], args[1]
                self.into_host += dst.data_ptr() in hosts
                self.from_host += src.data_ptr() in hosts
            return func(*args, **kwargs)

    with Copies() as copies:
        train(transformer, 2)
    leaves = sum(len(list(storages(s.host))) for slots in streamer.slots for s in slots)
    assert copies.into_host == 0
    assert copies.from_host == 2 * 2 * leaves  # every load copies every host tensor once, nothing else
    assert host_pointers(streamer) == set(before)  # the host copies were not replaced either
    for slots, saved in zip(streamer.slots, values, strict=True):
        assert all(torch.equal(_plain(s.host), v) for s, v in zip(slots, saved, strict=True))


def test_the_lora_keeps_its_device_and_storage_through_offloads_and_optimizer_steps(build):
    transformer, streamer = build(2)
    streamed = [p for p in streamer.blocks[-1].parameters() if p.requires_grad]
    assert streamed and all(".lora_" in n for n, p in transformer.named_parameters() if p.requires_grad)
    parameter = streamed[0]
    pointer, device = parameter.data_ptr(), parameter.device
    optimizer = torch.optim.AdamW(lora_parameters(transformer), lr=1e-2)
    states = []
    for batch in batches(3):
        before = parameter.detach().clone()
        with torch.no_grad():
            transformer(**_inputs())  # an offload with no step: the value is untouched
        assert torch.equal(parameter, before) and parameter.data_ptr() == pointer
        flow_matching_loss(transformer, batch, dtype=torch.float32).backward()
        assert parameter.grad is not None and parameter.grad.device == device
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        assert parameter.data_ptr() == pointer and parameter.device == device
        assert not torch.equal(parameter, before)  # it trained
        states.append({k: v.data_ptr() for k, v in optimizer.state[parameter].items() if v.dim()})
    assert states[0] == states[1] == states[2] and states[0]  # Adam's moments stay where they are


@pytest.mark.parametrize(
    ("precision", "mixed"),
    [("no_change", "bf16"), ("int8-quanto", "no"), ("int4-quanto", "no")],
)
def test_losses_equal_those_without_streaming(build, precision, mixed):
    dtype = training_dtype(mixed)
    plain, none = build(0, precision, mixed)
    streamed, streamer = build(3, precision, mixed)
    assert none is None and streamer is not None
    assert train(plain, 3, dtype) == train(streamed, 3, dtype)
    assert dict(streamer.loads) == {0: 6, 1: 6, 2: 6}


def test_resident_parts_go_to_the_device_and_streamed_blocks_stay_in_ram(demo_model_dir):
    from diffusers import ChromaTransformer2DModel

    transformer = ChromaTransformer2DModel.from_pretrained(demo_model_dir, subfolder="transformer")
    streamed = streamed_blocks(transformer, 2)
    place_resident(transformer, torch.device("meta"), streamed)  # "meta" stands in for the GPU
    for block in transformer_blocks(transformer):
        expected = "cpu" if any(block is s for s in streamed) else "meta"
        assert {p.device.type for p in block.parameters()} == {expected}
    assert transformer.x_embedder.weight.device.type == "meta"


# -- refusals and fallbacks -----------------------------------------------------------------------


def test_pinning_that_fails_falls_back_to_ordinary_ram_with_one_warning(demo_model_dir, monkeypatch, caplog):
    from diffusers import ChromaTransformer2DModel

    def refuse(self, *args, **kwargs):
        raise RuntimeError("cudaHostAlloc failed: out of memory")

    monkeypatch.setattr(torch.Tensor, "pin_memory", refuse)
    transformer = ChromaTransformer2DModel.from_pretrained(demo_model_dir, subfolder="transformer")
    transformer.requires_grad_(False)
    streamer = BlockStreamer(streamed_blocks(transformer, 3), CPU, total_blocks=4, pin=True)
    with caplog.at_level("WARNING"):
        report = streamer.install()
    assert not report.pinned and "not pinned" in report.describe()
    assert len(streamer.warnings) == 1 and "Could not pin" in streamer.warnings[0]
    assert sum("Could not pin" in r.message for r in caplog.records) == 1
    with torch.no_grad():
        transformer(**_inputs())
    assert dict(streamer.loads) == {0: 1, 1: 1, 2: 1}


def test_a_mac_and_nf4_are_refused_with_a_reason():
    with pytest.raises(TrainingError) as mac:
        check_streaming(torch.device("mps"), "int4-quanto")
    assert "unified" in str(mac.value) and "blocks_to_swap to 0" in mac.value.hint
    with pytest.raises(TrainingError) as nf4:
        check_streaming(torch.device("cuda"), "nf4-bnb")
    assert "nf4-bnb" in str(nf4.value) and "int4-quanto" in nf4.value.hint
    check_streaming(torch.device("cuda"), "int8-quanto")  # no error
    check_streaming(CPU, "no_change")


def test_a_run_on_a_mac_fails_with_the_reason_and_loads_nothing(make_config, events, monkeypatch):
    monkeypatch.setenv("CHROMA_STUDIO_DEVICE", "mps")  # the device the engine picks
    result = run_training(make_config(blocks_to_swap=2), events)
    assert result.status == "failed"
    assert "unified" in result.failure.message and not result.failure.traceback
    assert not events.of(ev.StepLogged)


def test_blocks_to_swap_without_checkpointing_is_a_settings_error(make_config):
    problems = make_config(blocks_to_swap=4, gradient_checkpointing=False).validate()
    assert [p.key for p in problems if p.severity == "error"] == ["blocks_to_swap"]
    assert not [p for p in make_config(blocks_to_swap=4).validate() if p.severity == "error"]


def test_simpletuners_group_offload_reads_as_streaming_with_a_warning_where_it_differs(tmp_path):
    from chroma_studio.config import ConfigError, load_config

    path = tmp_path / "config.json"
    path.write_text(
        json.dumps(
            {
                "--enable_group_offload": True,
                "group_offload_type": "leaf_level",
                "group_offload_blocks_per_group": 1,
                "group_offload_use_stream": True,
                "group_offload_to_disk_path": "/tmp/offload",
            }
        )
    )
    config, warnings = load_config(path)
    assert config.model.blocks_to_swap == 57
    said = {w.key: w.message for w in warnings}
    assert "blocks_to_swap 57" in said["--enable_group_offload"]
    assert "leaf-level" in said["group_offload_type"] and "never from disk" in said["group_offload_to_disk_path"]
    assert "group_offload_blocks_per_group" not in said and "group_offload_use_stream" not in said  # same meaning

    path.write_text(json.dumps({"enable_group_offload": True, "blocks_to_swap": 20}))
    config, warnings = load_config(path)
    assert config.model.blocks_to_swap == 20 and "decides" in warnings[0].message
    path.write_text(json.dumps({"enable_group_offload": False, "group_offload_type": "block_level"}))
    config, warnings = load_config(path)
    assert config.model.blocks_to_swap == 0 and "is off" in warnings[0].message
    path.write_text(json.dumps({"enable_group_offload": "sometimes"}))
    with pytest.raises(ConfigError, match="enable_group_offload"):
        load_config(path)


# -- whole runs -----------------------------------------------------------------------------------


def test_a_streaming_run_trains_as_without_samples_records_and_resumes_exactly(make_config, tmp_path, demo_model_dir):
    common = {"max_train_steps": 4, "validation_steps": 2}
    plain = []
    run_training(make_config(output_dir=str(tmp_path / "plain"), **common), plain.append)
    first, second = [], []
    cut = make_config(output_dir=str(tmp_path / "cut"), blocks_to_swap=3, **common)
    control = TrainingControl()

    def stop_after_two(event):
        first.append(event)
        if isinstance(event, ev.StepLogged) and event.step == 2:
            control.stop()

    assert run_training(cut, stop_after_two, control).status == "stopped"
    resumed = run_training(cut.replace(resume_from_checkpoint="latest"), second.append)
    assert resumed.status == "finished" and resumed.step == 4

    def steps(log):
        return [(e.step, e.loss) for e in log if isinstance(e, ev.StepLogged)]

    assert steps(first) + steps(second) == steps(plain)
    samples = [e for e in first + second if isinstance(e, ev.SampleReady)]
    assert [s.step for s in samples] == [0, 4] and all(Path(s.path).is_file() for s in samples)
    messages = [e.message for e in first if isinstance(e, ev.LogMessage)]
    assert sum(m.startswith("Streaming 3 of 4 blocks from RAM (") for m in messages) == 1
    records = [json.loads(line) for line in (tmp_path / "cut" / "metrics.jsonl").read_text().splitlines()]
    streaming = [r["streaming"] for r in records]
    assert [r["step"] for r in records] == [1, 2, 3, 4]
    assert all(s["blocks"] == 3 and s["pinned"] is False for s in streaming)
    assert {s["bytes"] for s in streaming} == {2 * _frozen_bytes(demo_model_dir, 3)}  # two loads of each block
    assert "streaming" not in json.loads((tmp_path / "plain" / "metrics.jsonl").read_text().splitlines()[0])


# -- helpers --------------------------------------------------------------------------------------


def _plain(weight: torch.Tensor) -> torch.Tensor:
    """A weight's values as an ordinary tensor (a quantized one dequantized)."""
    return weight.dequantize() if hasattr(weight, "dequantize") and type(weight) is not torch.nn.Parameter else weight


def _frozen_bytes(model_dir, blocks: int) -> int:
    """The bytes of the base weights of the last ``blocks`` blocks of the demo transformer (fp32)."""
    from diffusers import ChromaTransformer2DModel

    transformer = ChromaTransformer2DModel.from_pretrained(model_dir, subfolder="transformer")
    return sum(p.numel() * p.element_size() for b in streamed_blocks(transformer, blocks) for p in b.parameters())


def _inputs() -> dict:
    from support import transformer_inputs

    return transformer_inputs()
