"""Environment facts against a fake NVML: only the GPUs torch uses, one query at a time."""

from __future__ import annotations

import sys
import types
from typing import Any

import pytest
import torch

from tsfbench import environment as environment_module
from tsfbench.environment import cuda_uuids, environment, nvml_facts
from tsfbench.measure.sampler import nvml_handle
from tsfbench.store import environment_id

# The host's GPUs as NVML numbers them: UUID -> (SM clock, max SM clock, power limit mW).
HOST = {
    "GPU-aaaa": (1980, 1980, 700_000),
    "GPU-bbbb": (1410, 1980, 700_000),
    "GPU-cccc": (1755, 1980, 450_000),
    "MIG-dddd": (1200, 1980, 700_000),  # a MIG slice
}


class NVMLError(Exception):
    pass


def fake_pynvml(unsupported: tuple[str, ...] = ()) -> types.ModuleType:
    """A pynvml with the host's GPUs; a function named in `unsupported` raises NVMLError."""
    module = types.ModuleType("pynvml")
    order = list(HOST)

    def query(name: str, value: Any) -> Any:
        def call(*args: Any) -> Any:
            if name in unsupported:
                raise NVMLError(f"{name}: Not Supported")
            return value(*args)

        return call

    def by_uuid(uuid: str) -> str:
        if uuid not in HOST:
            raise NVMLError("Not Found")
        return uuid

    module.__dict__.update(
        NVMLError=NVMLError,
        NVML_CLOCK_SM=1,
        nvmlInit=lambda: None,
        nvmlShutdown=lambda: None,
        nvmlSystemGetDriverVersion=query("driver", lambda: "580.65"),
        nvmlDeviceGetCount=lambda: len(order),
        nvmlDeviceGetHandleByIndex=lambda index: order[index],
        nvmlDeviceGetHandleByUUID=by_uuid,
        nvmlDeviceGetClockInfo=query("clock", lambda h, clock: HOST[h][0]),
        nvmlDeviceGetMaxClockInfo=query("max_clock", lambda h, clock: HOST[h][1]),
        nvmlDeviceGetPowerManagementLimit=query("power", lambda h: HOST[h][2]),
    )
    return module


def use_gpus(monkeypatch: pytest.MonkeyPatch, uuids: list[str]) -> None:
    """The driver lists these devices and torch sees them (bare UUIDs, as
    `get_device_properties(i).uuid` prints them)."""
    monkeypatch.setattr(environment_module, "nvml_state", lambda: (len(uuids), None))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: bool(uuids))
    monkeypatch.setattr(torch.cuda, "device_count", lambda: len(uuids))
    monkeypatch.setattr(
        torch.cuda,
        "get_device_properties",
        lambda i: types.SimpleNamespace(uuid=uuids[i], name=f"GPU {uuids[i]}"),
    )
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda i: f"GPU {uuids[i]}")


def test_facts_describe_only_the_gpus_torch_uses_in_its_order(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", fake_pynvml())
    use_gpus(monkeypatch, ["cccc", "dddd"])  # CUDA_VISIBLE_DEVICES=2,<the MIG slice>
    assert nvml_facts() == {
        "nvml_driver": "580.65",
        "gpu_sm_clock_mhz": [1755, 1200],
        "gpu_max_sm_clock_mhz": [1980, 1980],
        "gpu_power_limit_w": [450.0, 700.0],
    }


def test_an_unsupported_query_loses_that_fact_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", fake_pynvml(unsupported=("power",)))  # a vGPU
    use_gpus(monkeypatch, ["aaaa", "bbbb"])
    facts = nvml_facts()
    assert facts["nvml_driver"] == "580.65"
    assert facts["gpu_sm_clock_mhz"] == [1980, 1410]
    assert facts["gpu_power_limit_w"] == [None, None]


def test_a_device_nvml_cannot_find_gets_none_and_the_others_their_facts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", fake_pynvml())
    use_gpus(monkeypatch, ["eeee", "aaaa"])
    facts = nvml_facts()
    assert facts["gpu_sm_clock_mhz"] == [None, 1980]
    assert facts["gpu_power_limit_w"] == [None, 700.0]


def test_without_a_gpu_in_use_the_host_gpus_leave_the_environment_id_unchanged(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A CPU run on a host with GPUs (or CUDA_VISIBLE_DEVICES="") is the CPU environment."""
    use_gpus(monkeypatch, [])
    monkeypatch.setitem(sys.modules, "pynvml", None)  # no NVML: `import pynvml` fails
    without_nvml = environment()
    monkeypatch.setitem(sys.modules, "pynvml", fake_pynvml())
    with_host_gpus = environment()
    assert nvml_facts() == {}
    assert "gpu_sm_clock_mhz" not in with_host_gpus
    assert environment_id(with_host_gpus) == environment_id(without_nvml)


def test_without_nvml_a_working_cuda_is_still_found_and_the_environment_says_nvml_is_missing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A container without libnvidia-ml: `import pynvml` works or not, NVML cannot start, and
    torch sees the GPU. The environment names the GPU and says what NVML's absence costs."""
    real_nvml = environment_module.nvml_state
    use_gpus(monkeypatch, ["aaaa"])
    monkeypatch.setattr(environment_module, "nvml_state", real_nvml)  # the real one, failing
    monkeypatch.setitem(sys.modules, "pynvml", None)  # `import pynvml` fails
    monkeypatch.setattr(environment_module, "gpu_device_files", lambda: True, raising=False)
    env = environment()
    assert env["cuda_available"] is True
    assert env["gpus"] == ["GPU aaaa"]
    assert "torch allocator only" in env["nvml_unavailable"]
    assert "no energy" in env["nvml_unavailable"]
    assert "nvml_driver" in env and "gpu_sm_clock_mhz" not in env  # no NVML facts invented


def test_without_nvml_and_without_a_gpu_device_torch_is_not_asked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", None)
    monkeypatch.setattr(environment_module, "gpu_device_files", lambda: False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: pytest.fail("torch was asked"))
    assert environment_module.cuda_available() is False
    assert "nvml_unavailable" not in environment()


@pytest.mark.gpu
def test_a_real_gpu_has_its_facts_one_entry_per_visible_device() -> None:
    facts = nvml_facts()
    assert facts["nvml_driver"]
    for key in ("gpu_sm_clock_mhz", "gpu_max_sm_clock_mhz", "gpu_power_limit_w"):
        assert len(facts[key]) == torch.cuda.device_count()
    for uuid in cuda_uuids():  # every device torch uses is found by its UUID (raises if not)
        assert nvml_handle(uuid) is not None
