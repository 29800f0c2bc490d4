"""A device's peak FLOP/s for a dtype: what a measured rate is a share of.

On a GPU the datasheet's dense figure by exact device name; on the CPU no datasheet applies (the
clock, the cores given to us and the vector units vary), so the peak is measured: the best rate of
a short matrix-multiply benchmark of the model's own GEMM shapes (`gemm_peak`). Nearly all of a
transformer step's FLOPs are such GEMMs, so no exact implementation runs faster than its FLOPs at
that rate. FLOP/s here are real FLOPs (2 per multiply-add), as datasheets count them.
"""

from __future__ import annotations

import time

import torch

# Dense bf16 tensor-core peak FLOP/s (no sparsity), keyed by the exact name
# `torch.cuda.get_device_name` reports. Sources: NVIDIA's product datasheets (H100, H200, H800,
# A100, A800, L40S, L4), which print bf16 with 2:4 sparsity, halved here: H100 / H800 SXM5 and
# H200 SXM 1,979 TFLOPS; H100 NVL and H200 NVL 1,671; H100 / H800 PCIe 1,513; A100 / A800, every
# form, 624; L4 242. The L40S datasheet prints the dense figure, 362.05.
# A name not listed, or a MIG slice (its name ends in the profile, e.g. "... MIG 1g.10gb", and
# its share of the peak is not published), has no peak: a share of a wrong one is worse.
BF16_PEAK = {
    "NVIDIA H100 80GB HBM3": 989.5e12,  # SXM5
    "NVIDIA H100 NVL": 835.5e12,
    "NVIDIA H100 PCIe": 756.5e12,
    "NVIDIA H200": 989.5e12,  # SXM
    "NVIDIA H200 NVL": 835.5e12,
    "NVIDIA H800": 989.5e12,  # SXM5
    "NVIDIA H800 PCIe": 756.5e12,
    "NVIDIA A100-SXM4-40GB": 312e12,
    "NVIDIA A100-SXM4-80GB": 312e12,
    "NVIDIA A100-PCIE-40GB": 312e12,
    "NVIDIA A100 80GB PCIe": 312e12,
    "NVIDIA A800-SXM4-80GB": 312e12,
    "NVIDIA A800 80GB PCIe": 312e12,
    "NVIDIA L40S": 362.05e12,
    "NVIDIA L4": 121e12,
}
# fp32 without tensor cores (torch leaves TF32 matmuls off by default), same datasheets: H100 /
# H800 SXM5 and H200 SXM 67 TFLOPS, NVL 60, PCIe 51; A100 / A800 19.5; L40S 91.6; L4 30.3.
FP32_PEAK = {
    "NVIDIA H100 80GB HBM3": 67e12,
    "NVIDIA H100 NVL": 60e12,
    "NVIDIA H100 PCIe": 51e12,
    "NVIDIA H200": 67e12,
    "NVIDIA H200 NVL": 60e12,
    "NVIDIA H800": 67e12,
    "NVIDIA H800 PCIe": 51e12,
    "NVIDIA A100-SXM4-40GB": 19.5e12,
    "NVIDIA A100-SXM4-80GB": 19.5e12,
    "NVIDIA A100-PCIE-40GB": 19.5e12,
    "NVIDIA A100 80GB PCIe": 19.5e12,
    "NVIDIA A800-SXM4-80GB": 19.5e12,
    "NVIDIA A800 80GB PCIe": 19.5e12,
    "NVIDIA L40S": 91.6e12,
    "NVIDIA L4": 30.3e12,
}
# fp16 tensor cores run at the bf16 rate on every GPU listed
DATASHEET_PEAK = {"bf16": BF16_PEAK, "fp16": BF16_PEAK, "fp32": FP32_PEAK}
TORCH_DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


def datasheet_peak(device_name: str, dtype: str) -> float | None:
    """The dense peak FLOP/s of a GPU named exactly `device_name` at `dtype`; None if unknown."""
    return DATASHEET_PEAK[dtype].get(device_name.strip())


def gemm_peak(
    tokens: int, dim: int = 768, repeats: int = 5, dtype: torch.dtype = torch.float32
) -> float:
    """The best FLOP/s of the model's own GEMM shapes (qkv, fc1, fc2 on every token) on the CPU.

    Best of `repeats` after one warm-up, each of the three shapes: the rate this machine reaches
    on exactly the products the model spends its FLOPs in."""
    best = 0.0
    for inner, outer in ((dim, 3 * dim), (dim, 4 * dim), (4 * dim, dim)):
        a, b = torch.randn(tokens, inner, dtype=dtype), torch.randn(inner, outer, dtype=dtype)
        a @ b  # warm-up
        for _ in range(repeats):
            start = time.perf_counter()
            a @ b
            best = max(best, 2 * tokens * inner * outer / (time.perf_counter() - start))
    return best


def device_peak(
    device: torch.device, dtype: str, tokens: int, dim: int, shapes: str = "the model's GEMMs"
) -> tuple[float | None, str]:
    """The peak FLOP/s a part's rate is a share of, and how it was found (shown with it);
    `shapes` says what the CPU benchmark's products stand for."""
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        peak = datasheet_peak(name, dtype)
        how = f"datasheet dense {dtype} peak of {name}" if peak else f"{name}: no datasheet peak"
        return peak, how
    peak = gemm_peak(tokens, dim, dtype=TORCH_DTYPES[dtype])
    how = (
        f"CPU: best {dtype} matmul rate measured now on {shapes} "
        f"({tokens} x {dim} by {dim} x {3 * dim}, {dim} x {4 * dim} and {4 * dim} x {dim}; "
        "best of 5 each)"
    )
    return peak, how
