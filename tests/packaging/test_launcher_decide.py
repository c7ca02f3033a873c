"""The decision table: detected hardware -> PyTorch build, index and pins, with reasons."""

from __future__ import annotations

import pytest
from chroma_studio_launcher.decide import (
    PYTHON_VERSION,
    TORCH_VERSION,
    AmdGpu,
    Hardware,
    NvidiaGpu,
    OfflineFolder,
    Plan,
    Unsupported,
    allowed_backends,
    decide,
    parse_torch_wheel,
    parse_version,
)

PYTORCH = "https://download.pytorch.org/whl"


def linux(**kw) -> Hardware:
    return Hardware(system="linux", machine="x86_64", **kw)


def windows(**kw) -> Hardware:
    return Hardware(system="windows", machine="x86_64", **kw)


def rtx(driver: str, cc=(8, 9), name="NVIDIA GeForce RTX 4090") -> NvidiaGpu:
    return NvidiaGpu(name, parse_version(driver), cc, 24564)


def plan_of(hardware: Hardware, **kw) -> Plan:
    result = decide(hardware, **kw)
    assert isinstance(result, Plan), result
    return result


@pytest.mark.parametrize(
    ("driver", "backend"),
    [("579.99", "cu126"), ("580", "cu130"), ("580.65.06", "cu130"), ("575.51.03", "cu126"), ("590.44.01", "cu130")],
)
def test_nvidia_driver_at_the_cuda_12_13_boundary(driver, backend):
    plan = plan_of(linux(nvidia=(rtx(driver),)))
    assert plan.backend == backend
    assert plan.index_url == f"{PYTORCH}/{backend}"
    assert plan.torch == f"torch=={TORCH_VERSION}"
    assert plan.local_label == backend
    assert plan.device == "cuda"
    assert driver.split(".")[0] in plan.reason


def test_windows_uses_the_same_boundary_with_its_own_driver_numbers():
    assert plan_of(windows(nvidia=(rtx("580.88"),))).backend == "cu130"
    assert plan_of(windows(nvidia=(rtx("576.02"),))).backend == "cu126"


@pytest.mark.parametrize(("system", "driver"), [("linux", "525.60.12"), ("linux", "470.256.02"), ("windows", "528.24")])
def test_driver_too_old_for_cuda_12_falls_back_to_cpu_and_says_update(system, driver):
    plan = plan_of(Hardware(system=system, machine="x86_64", nvidia=(rtx(driver),)))
    assert plan.backend == "cpu"
    assert "too old" in plan.reason and "580" in plan.reason


def test_oldest_driver_that_runs_cuda_12():
    assert plan_of(linux(nvidia=(rtx("525.60.13"),))).backend == "cu126"
    assert plan_of(windows(nvidia=(rtx("528.33"),))).backend == "cu126"


def test_gpu_without_driver_installs_cpu_and_asks_for_the_driver():
    plan = plan_of(linux(nvidia=(NvidiaGpu("NVIDIA GPU", None),)))
    assert plan.backend == "cpu"
    assert plan.index_url == f"{PYTORCH}/cpu"
    assert "no NVIDIA driver" in plan.reason


def test_pascal_stays_on_cuda_12_even_with_a_new_driver():
    plan = plan_of(linux(nvidia=(rtx("580.82", cc=(6, 1), name="NVIDIA GeForce GTX 1080"),)))
    assert plan.backend == "cu126"
    assert "not supported by CUDA 13" in plan.reason


def test_blackwell_needs_cuda_13_and_a_580_driver():
    blackwell = "NVIDIA GeForce RTX 5090"
    assert plan_of(linux(nvidia=(rtx("580.65.06", (12, 0), blackwell),))).backend == "cu130"
    plan = plan_of(linux(nvidia=(rtx("572.16", (12, 0), blackwell),)))
    assert plan.backend == "cpu"
    assert "580" in plan.reason and "Update the driver" in plan.reason


def test_unknown_compute_capability_follows_the_driver():
    assert plan_of(linux(nvidia=(rtx("580.1", cc=None),))).backend == "cu130"


def test_too_old_gpu_uses_cpu():
    plan = plan_of(linux(nvidia=(rtx("580.1", cc=(3, 5), name="Tesla K80"),)))
    assert plan.backend == "cpu"


def test_nvidia_wins_over_amd_and_the_best_gpu_decides():
    hardware = linux(nvidia=(rtx("580.1", (6, 1), "GTX 1060"), rtx("580.1", (8, 6), "RTX 3090")), amd=(AmdGpu("RX"),))
    plan = plan_of(hardware)
    assert plan.backend == "cu130"
    assert "RTX 3090" in plan.reason


def test_rocm_on_a_supported_linux_amd_gpu():
    plan = plan_of(linux(amd=(AmdGpu("Radeon RX 7900 XTX", "gfx1100"),), amd_compute_driver=True))
    assert plan.backend == "rocm7.2"
    assert plan.index_url == f"{PYTORCH}/rocm7.2"
    assert plan.local_label == "rocm7.2"
    assert plan.device == "cuda"  # ROCm answers through torch.cuda
    assert plan.env == ()


def test_rocm_stand_in_sets_the_gfx_override_and_warns():
    plan = plan_of(linux(amd=(AmdGpu("Radeon RX 6700 XT", "gfx1031"),), amd_compute_driver=True))
    assert plan.backend == "rocm7.2"
    assert dict(plan.env) == {"HSA_OVERRIDE_GFX_VERSION": "10.3.0"}
    assert plan.warnings


def test_unsupported_amd_gpu_uses_cpu_with_its_architecture_named():
    plan = plan_of(linux(amd=(AmdGpu("Radeon RX 580", "gfx803"),), amd_compute_driver=True))
    assert plan.backend == "cpu"
    assert "gfx803" in plan.reason


def test_amd_without_the_compute_driver_uses_cpu_and_names_dev_kfd():
    plan = plan_of(linux(amd=(AmdGpu("Radeon RX 7900 XTX", "gfx1100"),), amd_compute_driver=False))
    assert plan.backend == "cpu"
    assert "/dev/kfd" in plan.reason


def test_amd_with_unknown_architecture_uses_cpu_but_rocm_can_be_chosen():
    hardware = linux(amd=(AmdGpu("AMD GPU"),), amd_compute_driver=True)
    assert plan_of(hardware).backend == "cpu"
    chosen = plan_of(hardware, override="rocm7.2")
    assert chosen.backend == "rocm7.2"
    assert chosen.reason.startswith("Chosen by you")


def test_windows_amd_uses_cpu_with_a_clear_reason():
    plan = plan_of(windows(amd=(AmdGpu("AMD Radeon RX 7900 XTX"),)))
    assert plan.backend == "cpu"
    assert plan.index_url == f"{PYTORCH}/cpu"
    assert "Linux only" in plan.reason
    assert "rocm7.2" not in allowed_backends(windows())


def test_apple_silicon_uses_mps_from_pypi():
    plan = plan_of(Hardware(system="darwin", machine="arm64", os_version=(15, 1)))
    assert plan.backend == "mps"
    assert plan.device == "mps"
    assert plan.index_url is None
    assert plan.local_label is None


def test_apple_silicon_on_old_macos_uses_cpu():
    plan = plan_of(Hardware(system="darwin", machine="arm64", os_version=(12, 1)))
    assert (plan.backend, plan.index_url) == ("cpu", None)


def test_intel_mac_is_unsupported_with_the_reason():
    result = decide(Hardware(system="darwin", machine="x86_64", os_version=(14, 0)))
    assert isinstance(result, Unsupported)
    assert "Intel Mac" in result.reason and "Apple silicon" in result.reason
    assert allowed_backends(Hardware(system="darwin", machine="x86_64")) == ()


def test_no_gpu_uses_the_cpu_index_and_pins_python():
    plan = plan_of(linux())
    assert (plan.backend, plan.index_url) == ("cpu", f"{PYTORCH}/cpu")
    assert (plan.python, plan.managed_python, plan.python_downloads) == (PYTHON_VERSION, True, True)
    assert not plan.offline


def test_override_must_exist_on_this_system():
    result = decide(Hardware(system="darwin", machine="arm64"), override="cu130")
    assert isinstance(result, Unsupported)
    assert "mps, cpu" in result.reason


def test_override_to_cpu_on_an_nvidia_machine():
    plan = plan_of(linux(nvidia=(rtx("580.1"),)), override="cpu")
    assert plan.backend == "cpu"
    assert "automatic choice was NVIDIA GPU (CUDA 13.0)" in plan.reason


def test_explicit_interpreter_turns_off_managed_python():
    plan = plan_of(linux(), python="/usr/bin/python3.11")
    assert (plan.python, plan.managed_python, plan.python_downloads) == ("/usr/bin/python3.11", None, False)


CPU_311 = f"torch-{TORCH_VERSION}+cpu-cp311-cp311-manylinux_2_28_x86_64.whl"
CU130_312 = f"torch-{TORCH_VERSION}+cu130-cp312-cp312-manylinux_2_28_x86_64.whl"


def folder(*files: str, mirror: str | None = None) -> OfflineFolder:
    return OfflineFolder("/media/wheels", ("numpy-2.3.0-cp311-cp311-manylinux_2_28_x86_64.whl", *files), mirror)


def test_offline_folder_replaces_the_network_and_sets_python_from_the_wheel():
    plan = plan_of(linux(), offline=folder(CPU_311))
    assert plan.offline and plan.find_links == "/media/wheels"
    assert plan.index_url is None
    assert (plan.backend, plan.local_label, plan.python) == ("cpu", "cpu", "3.11")
    assert (plan.managed_python, plan.python_downloads) == (None, False)  # no Python downloads offline


def test_offline_folder_with_a_python_mirror_uses_managed_python():
    plan = plan_of(linux(), offline=folder(CPU_311, mirror="/media/wheels/python"))
    assert (plan.managed_python, plan.python_downloads, plan.python_mirror) == (True, True, "/media/wheels/python")


def test_offline_folder_matching_the_gpu():
    plan = plan_of(linux(nvidia=(rtx("580.1"),)), offline=folder(CPU_311, CU130_312))
    assert (plan.backend, plan.python) == ("cu130", "3.12")


def test_offline_folder_with_only_cpu_wheels_on_an_nvidia_machine_says_so():
    plan = plan_of(linux(nvidia=(rtx("580.1"),)), offline=folder(CPU_311))
    assert plan.backend == "cpu"
    assert "offline folder holds PyTorch for CPU only" in plan.reason
    assert plan.warnings


def test_offline_folder_without_a_fitting_torch_wheel_is_refused():
    windows_wheel = f"torch-{TORCH_VERSION}+cpu-cp312-cp312-win_amd64.whl"
    old = "torch-2.9.1+cpu-cp311-cp311-manylinux_2_28_x86_64.whl"
    result = decide(linux(), offline=folder(windows_wheel, old))
    assert isinstance(result, Unsupported)
    assert "/media/wheels" in result.reason and TORCH_VERSION in result.reason


def test_offline_pypi_wheel_on_a_mac():
    wheel = f"torch-{TORCH_VERSION}-cp312-none-macosx_11_0_arm64.whl"
    plan = plan_of(Hardware(system="darwin", machine="arm64", os_version=(15, 0)), offline=folder(wheel))
    assert (plan.backend, plan.local_label, plan.find_links) == ("mps", None, "/media/wheels")


def test_torch_wheel_names():
    wheel = parse_torch_wheel(CU130_312)
    assert wheel is not None
    assert (wheel.version, wheel.label, wheel.python, wheel.platform) == (
        TORCH_VERSION,
        "cu130",
        "3.12",
        "manylinux_2_28_x86_64",
    )
    assert parse_torch_wheel("torchvision-0.29.1-cp312-cp312-win_amd64.whl") is None


def test_driver_version_parsing():
    assert parse_version("580.65.06") == (580, 65, 6)
    assert parse_version(" 528.33 ") == (528, 33)
    assert parse_version("") is None
