"""Where components come from: flavours, Hub ids, local folders and single files."""

import pytest
import torch
from safetensors.torch import save_file

from chroma_studio.config import config_from_dict
from chroma_studio.training.loading import Loader, ModelSourceError, load_t5_single_file, resolve_source


def test_flavours_map_to_lodestones_repositories():
    for flavour, repo in [("base", "Chroma1-Base"), ("hd", "Chroma1-HD"), ("flash", "Chroma1-Flash")]:
        source = resolve_source(config_from_dict({"model_flavour": flavour}))
        assert source.transformer.describe() == f"hub:lodestones/{repo}/transformer"
        assert source.vae.describe() == f"hub:lodestones/{repo}/vae"


def test_a_local_diffusers_folder_supplies_every_component(demo_model_dir):
    source = resolve_source(config_from_dict({"pretrained_model_name_or_path": str(demo_model_dir)}))
    assert {getattr(source, n).kind for n in ("transformer", "text_encoder", "tokenizer", "vae")} == {"folder"}
    assert source.text_encoder.subfolder == "text_encoder"


def test_a_single_file_takes_the_rest_from_the_flavour_or_the_given_paths(tmp_path, demo_model_dir):
    single = tmp_path / "Chroma1-HD.safetensors"
    single.write_bytes(b"")
    source = resolve_source(config_from_dict({"model_flavour": "hd", "pretrained_model_name_or_path": str(single)}))
    assert source.transformer.kind == "file" and source.transformer.location == str(single)
    assert source.text_encoder.describe() == "hub:lodestones/Chroma1-HD/text_encoder"
    t5 = tmp_path / "t5xxl_fp16.safetensors"
    t5.write_bytes(b"")
    source = resolve_source(
        config_from_dict(
            {
                "pretrained_model_name_or_path": str(single),
                "pretrained_t5_model_name_or_path": str(t5),
                "t5_tokenizer_name_or_path": str(demo_model_dir / "tokenizer"),
            }
        )
    )
    assert source.text_encoder.kind == "file"
    assert source.tokenizer.kind == "folder" and source.tokenizer.location == str(demo_model_dir / "tokenizer")


@pytest.mark.parametrize("path", ["/no/such/model.safetensors", "not a model", "./missing-folder"])
def test_a_missing_path_says_what_to_give(path):
    with pytest.raises(ModelSourceError) as info:
        resolve_source(config_from_dict({"pretrained_model_name_or_path": path}))
    assert path in str(info.value) and "Hub id" in str(info.value)


def test_single_file_transformer_loads_with_the_shipped_style_config(tmp_path, demo_pipeline, monkeypatch):
    """A transformer saved as one .safetensors file loads offline, configured from resources/models."""
    resources = tmp_path / "resources"
    demo_pipeline.transformer.save_config(resources / "models" / "transformer")
    monkeypatch.setenv("CHROMA_STUDIO_RESOURCES", str(resources))
    single = tmp_path / "chroma.safetensors"
    save_file(demo_pipeline.transformer.state_dict(), str(single))
    source = resolve_source(config_from_dict({"pretrained_model_name_or_path": str(single)}))
    loaded = Loader(source).transformer(torch.float32)
    for name, tensor in demo_pipeline.transformer.state_dict().items():
        assert torch.equal(loaded.state_dict()[name], tensor), name


def test_t5_single_file_accepts_comfyui_layout_and_refuses_scaled_fp8(tmp_path, demo_model_dir, demo_pipeline):
    state = {k: v for k, v in demo_pipeline.text_encoder.state_dict().items() if k != "shared.weight"}
    path = tmp_path / "t5xxl_fp16.safetensors"
    save_file(state, str(path))
    encoder = load_t5_single_file(str(path), torch.float32, config_dir=str(demo_model_dir / "text_encoder"))
    ids = torch.tensor([[5, 6, 7, 1]])
    expected = demo_pipeline.text_encoder(ids)[0]
    torch.testing.assert_close(encoder(ids)[0], expected)

    save_file({**state, "scaled_fp8": torch.zeros(1)}, str(path))
    with pytest.raises(ModelSourceError, match="scaled-fp8"):
        load_t5_single_file(str(path), torch.float32, config_dir=str(demo_model_dir / "text_encoder"))


def test_offline_without_the_model_gives_a_hint_to_connect_or_use_local_files(make_config, events, monkeypatch):
    from chroma_studio.protocol import events as ev
    from chroma_studio.training.trainer import run_training

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    config = make_config(model_flavour="base", validation_prompt=["x"])
    result = run_training(config, events)
    assert result.status == "failed"
    assert "offline" in events.of(ev.Failed)[-1].hint
