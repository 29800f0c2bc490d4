"""The software and hardware a measurement was taken on, stored with every result."""

from __future__ import annotations

import contextlib
import os
import platform
import subprocess
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import torch

from tsfbench import __version__


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


def nvml_facts() -> dict[str, Any]:
    """Driver version, and per GPU its SM clock now and at most and its power limit, from NVML.

    Clocks and power limits change measured latency and energy, so they travel with results.
    Empty where there is no NVML library, driver or device.
    """
    try:
        import pynvml

        pynvml.nvmlInit()
    except Exception:  # no library, no driver or no device: all mean "no NVML here"
        return {}
    try:
        driver = pynvml.nvmlSystemGetDriverVersion()
        facts: dict[str, Any] = {
            "nvml_driver": driver.decode() if isinstance(driver, bytes) else driver,
            "gpu_sm_clock_mhz": [],
            "gpu_max_sm_clock_mhz": [],
            "gpu_power_limit_w": [],
        }
        for index in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            sm = pynvml.NVML_CLOCK_SM
            facts["gpu_sm_clock_mhz"].append(pynvml.nvmlDeviceGetClockInfo(handle, sm))
            facts["gpu_max_sm_clock_mhz"].append(pynvml.nvmlDeviceGetMaxClockInfo(handle, sm))
            limit_mw = pynvml.nvmlDeviceGetPowerManagementLimit(handle)
            facts["gpu_power_limit_w"].append(limit_mw / 1000)
        return facts
    except Exception:  # a query this GPU does not support: keep what we have
        return {}
    finally:
        pynvml.nvmlShutdown()


def cpu_model() -> str:
    """The CPU's marketing name (Linux), else the architecture: CPU latency depends on it."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    return platform.processor() or platform.machine()


def environment() -> dict[str, Any]:
    """Hardware and software facts; `tsfbench.store.environment_id` digests them."""
    cuda = torch.cuda.is_available()
    return {
        "tsfbench": __version__,
        "git_commit": git_commit(),
        "host": platform.node(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cuda_available": cuda,
        "gpus": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
        if cuda
        else [],
        "nvml_driver": None,
        "fvcore": package_version("fvcore"),
        "decord": package_version("decord"),
        "torchvision": package_version("torchvision"),  # the baselines' builders
        "pytorchvideo": package_version("pytorchvideo"),
        "nvidia_ml_py": package_version("nvidia-ml-py"),
    } | nvml_facts()
