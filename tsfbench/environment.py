"""The software and hardware a measurement was taken on, stored with every result."""

from __future__ import annotations

import ast
import contextlib
import importlib.util
import os
import platform
import subprocess
from collections.abc import Callable, Mapping, Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from tsfbench import __version__
from tsfbench.measure.sampler import describe, nvml_handle


def package_version(name: str) -> str | None:
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def git_commit() -> str | None:
    """The commit of the tsfbench checkout, if it runs from one (editable installs do)."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=Path(__file__).parent,
            capture_output=True,
            text=True,
            timeout=5,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def torch_build() -> dict[str, str | None]:
    """torch's `__version__` and `version.cuda`, read from its `version.py` without importing
    torch (2.5 s here), so that a resumed run or a report starts at once."""
    spec = importlib.util.find_spec("torch")
    found: dict[str, str | None] = {"__version__": None, "cuda": None}
    if spec is None or not spec.submodule_search_locations:
        return found
    source = Path(next(iter(spec.submodule_search_locations)), "version.py").read_text()
    for node in ast.parse(source).body:
        target = node.targets[0] if isinstance(node, ast.Assign) else getattr(node, "target", None)
        if isinstance(target, ast.Name) and target.id in found and node.value is not None:
            found[target.id] = ast.literal_eval(node.value)
    return found


def nvml_state() -> tuple[int, str | None]:
    """(GPUs the NVIDIA driver lists, why NVML cannot be used here or None); no CUDA, no torch."""
    try:
        import pynvml

        pynvml.nvmlInit()
    except Exception as error:  # no library (a container without libnvidia-ml), no driver
        return 0, describe(error)
    try:
        return int(pynvml.nvmlDeviceGetCount()), None
    except Exception as error:
        return 0, describe(error)
    finally:
        _tried(pynvml.nvmlShutdown)


def nvml_device_count() -> int:
    """GPUs the NVIDIA driver lists (0 without a driver or without NVML)."""
    return nvml_state()[0]


def gpu_device_files() -> bool:
    """Whether the kernel exposes an NVIDIA device (or WSL's GPU) to this process: without one
    CUDA cannot work, so torch need not be asked."""
    return any(Path(path).exists() for path in ("/dev/nvidiactl", "/dev/nvidia0", "/dev/dxg"))


def cuda_available() -> bool:
    """`torch.cuda.is_available()`, asked only where a GPU may be: where NVML works and lists
    none, or where NVML is missing and the kernel exposes no GPU, it is False for certain and
    torch is not imported. NVML missing beside a working CUDA (a container without
    libnvidia-ml) still finds the GPU through torch."""
    count, problem = nvml_state()
    if count == 0 and (problem is None or not gpu_device_files()):
        return False
    import torch

    return torch.cuda.is_available()


def cuda_uuids() -> list[str]:
    """UUIDs of the CUDA devices this process uses, in torch's order (`CUDA_VISIBLE_DEVICES`
    applied); empty without CUDA."""
    if not cuda_available():
        return []
    import torch

    return [str(torch.cuda.get_device_properties(i).uuid) for i in range(torch.cuda.device_count())]


def gpu_names() -> list[str]:
    """Names of the CUDA devices this process uses (torch's order); empty without CUDA."""
    if not cuda_available():
        return []
    import torch

    return [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]


def _tried(query: Callable[[], Any]) -> Any:
    """One NVML query on its own: None where this GPU does not support it (a vGPU's power
    limit), so that one unsupported fact never drops the others."""
    try:
        return query()
    except Exception:
        return None


def nvml_facts(uuids: Sequence[str] | None = None) -> dict[str, Any]:
    """Driver version, and per used GPU its SM clock now and at most and its power limit.

    Clocks and power limits change measured latency and energy, so they travel with results.
    The GPUs are those torch uses (default: `cuda_uuids()`), found by UUID, not NVML's index,
    which ignores `CUDA_VISIBLE_DEVICES`. Empty where no GPU is used or there is no NVML.
    """
    uuids = cuda_uuids() if uuids is None else list(uuids)
    if not uuids:  # the host's GPUs describe nothing a CPU measurement depends on
        return {}
    try:
        import pynvml

        pynvml.nvmlInit()
    except Exception:  # no library, no driver or no device: all mean "no NVML here"
        return {}
    try:
        driver = _tried(pynvml.nvmlSystemGetDriverVersion)
        handles = [_tried(lambda uuid=uuid: nvml_handle(uuid)) for uuid in uuids]

        def each(query: Callable[[Any], Any]) -> list[Any]:
            return [None if h is None else _tried(lambda h=h: query(h)) for h in handles]

        sm = pynvml.NVML_CLOCK_SM
        limits_mw = each(pynvml.nvmlDeviceGetPowerManagementLimit)
        return {
            "nvml_driver": driver.decode() if isinstance(driver, bytes) else driver,
            "gpu_sm_clock_mhz": each(lambda h: pynvml.nvmlDeviceGetClockInfo(h, sm)),
            "gpu_max_sm_clock_mhz": each(lambda h: pynvml.nvmlDeviceGetMaxClockInfo(h, sm)),
            "gpu_power_limit_w": [None if mw is None else mw / 1000 for mw in limits_mw],
        }
    finally:
        _tried(pynvml.nvmlShutdown)


def cpu_model() -> str:
    """The CPU's marketing name (Linux), else the architecture: CPU latency depends on it."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    return platform.processor() or platform.machine()


def environment() -> dict[str, Any]:
    """Hardware and software facts; `tsfbench.store.environment_id` digests them."""
    cuda = cuda_available()
    build = torch_build()
    return (
        {
            "tsfbench": __version__,
            "git_commit": git_commit(),
            "host": platform.node(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpu": cpu_model(),
            "cpu_count": os.cpu_count(),
            "torch": build["__version__"],
            "cuda": build["cuda"],
            "cuda_available": cuda,
            "gpus": gpu_names() if cuda else [],
            "nvml_driver": None,
            "fvcore": package_version("fvcore"),
            "decord": package_version("decord"),
            "torchvision": package_version("torchvision"),  # the baselines' builders
            "pytorchvideo": package_version("pytorchvideo"),
            "nvidia_ml_py": package_version("nvidia-ml-py"),
        }
        | nvml_facts()
        | nvml_missing(cuda)
    )


NVML_MISSING = "peak memory from the torch allocator only (no NVML process memory), no energy"


def nvml_missing(cuda: bool) -> dict[str, str]:
    """`{"nvml_unavailable": why and what it costs}` where CUDA works without NVML; else {} (a
    key only where it says something, so other environments keep their id)."""
    problem = nvml_state()[1] if cuda else None
    return {} if problem is None else {"nvml_unavailable": f"{problem}: {NVML_MISSING}"}


def environment_summary(env: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The environment as flat `env_*` columns (lists joined), so records stay pivotable."""
    env = environment() if env is None else env
    return {
        f"env_{key}": ", ".join(map(str, value)) if isinstance(value, list) else value
        for key, value in env.items()
    }
