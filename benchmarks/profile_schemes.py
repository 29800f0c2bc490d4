"""Where the time goes, per attention scheme, from `tsfbench profile`'s own code.

    python benchmarks/profile_schemes.py                    # all three tables (minutes on a CPU)
    python benchmarks/profile_schemes.py --skip-time        # FLOPs and memory only (seconds)
    python benchmarks/profile_schemes.py --iterations 5 --json out.json

1. The five schemes at 8 x 224 (inference, fp32, batch 1): each part kind's share of the time
   and of the FLOPs (summed over the steps of a scheme), the step's median latency without the
   profiler, the profiler's overhead (profiled step / unprofiled step - 1) and the parts' sum
   against that latency (acceptance: within 5%). Every scheme is profiled in this process one
   after the other, so a busy machine slows each alike; the shares and ratios are the figures to
   compare, and the absolute times are this machine's only.
2. joint vs divided at 8 / 16 / 32 frames: the attention kernel's multiply-adds (fvcore, meta
   device), the whole model's, and the predicted training peak memory with SDPA and with the
   eager softmax(QK^T)V (`math`), and where `tsfbench.measure.peak_parts` exists the `attend`
   part's saved activations: what makes joint's cost grow faster than divided's.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

from tsfbench.config import GIB, ProbeSettings, RunConfig
from tsfbench.measure.flops import part_macs
from tsfbench.measure.predict import predict_peak
from tsfbench.measure.profile import profile, within_tolerance
from tsfbench.models.registry import ATTENTIONS
from tsfbench.report.profile import KINDS, kind
from tsfbench.store import atomic_write


def by_kind(parts: list[dict[str, Any]], key: str) -> Counter[str]:
    shares: Counter[str] = Counter()
    for part in parts:
        shares[kind(part["part"])] += part[key]
    return shares


def schemes_table(iterations: int, warmup: int) -> list[dict[str, Any]]:
    """Table 1: every scheme at 8 x 224 profiled (inference, fp32, batch 1)."""
    settings = ProbeSettings(warmup=warmup, iterations=iterations, device="cpu")
    results = []
    for attention in ATTENTIONS:
        began = time.perf_counter()
        result = profile(RunConfig(attention=attention), settings)
        result["wall_s"] = time.perf_counter() - began
        results.append(result)
    kinds = [k for k in KINDS if any(by_kind(r["parts"], "time_share")[k] for r in results)]
    print("\nFive schemes, 8 x 224, inference fp32 b1: time % / FLOPs % by part kind")
    print(f"{'scheme':<14}" + "".join(f"{k:>13}" for k in kinds))
    for result in results:
        time_share = by_kind(result["parts"], "time_share")
        flop_share = by_kind(result["parts"], "flop_share")
        cells = "".join(f"{100 * time_share[k]:6.1f}/{100 * flop_share[k]:<6.1f}" for k in kinds)
        print(f"{result['attention']:<14}{cells}")
    print(
        f"\n{'scheme':<14}{'latency ms':>12}{'profiled ms':>13}{'overhead':>10}"
        f"{'parts sum':>12}{'vs latency':>12}{'within 5%':>11}{'wall s':>8}"
    )
    for r in results:
        print(
            f"{r['attention']:<14}{r['latency']['median_ms']:>12.1f}"
            f"{r['profiled_step']['median_ms']:>13.1f}{100 * r['profiler_overhead']:>9.1f}%"
            f"{r['parts_sum_ms']:>12.1f}{100 * r['parts_sum_vs_latency']:>11.1f}%"
            f"{'yes' if within_tolerance(r) else 'no':>11}{r['wall_s']:>8.1f}"
        )
    print(f"peak: {results[0]['peak_how']}")
    return results


def growth_table() -> list[dict[str, Any]]:
    """joint vs divided at 8 / 16 / 32 frames: attention MACs and predicted training memory."""
    try:
        from tsfbench.measure.peak_parts import peak_breakdown  # type: ignore[import-not-found]
    except ImportError:
        peak_breakdown = None
    rows = []
    for frames in (8, 16, 32):
        for attention in ("joint", "divided"):
            config = RunConfig(attention=attention, frames=frames)
            total, parts = part_macs(config)
            attend = sum(v for p, v in parts.items() if p.endswith(".attend"))
            row: dict[str, Any] = {
                "attention": attention, "frames": frames, "gmacs": total / 1e9,
                "attend_gmacs": attend / 1e9, "attend_share": attend / total,
            }  # fmt: skip
            for backend in ("sdpa", "math"):
                settings = ProbeSettings(mode="train", backend=backend, device="cpu")
                row[f"peak_{backend}_gib"] = predict_peak(config, settings) / GIB
                if peak_breakdown is not None:
                    saved = [  # the attention kernel's activations saved for backward
                        r for r in peak_breakdown(config, settings)
                        if r["category"] == "activations" and str(r["part"]).endswith(".attend")
                    ]  # fmt: skip
                    row[f"attend_saved_{backend}_gib"] = sum(r["bytes"] for r in saved) / GIB
            rows.append(row)
    print("\njoint vs divided, 224 px, training fp32 b1 (FLOPs: multiply-adds; memory predicted)")
    print(
        f"{'scheme':<9}{'frames':>7}{'GFLOPs':>9}{'attend GFLOPs':>15}{'attend %':>10}"
        f"{'peak sdpa GiB':>15}{'peak math GiB':>15}"
    )
    saved = peak_breakdown is not None
    if saved:
        print(f"{'':<65}attend saved GiB: sdpa / math")
    for r in rows:
        line = (
            f"{r['attention']:<9}{r['frames']:>7}{r['gmacs']:>9.0f}{r['attend_gmacs']:>15.1f}"
            f"{100 * r['attend_share']:>9.1f}%"
            f"{r['peak_sdpa_gib']:>15.2f}{r['peak_math_gib']:>15.2f}"
        )
        if saved:
            line += f"{r['attend_saved_sdpa_gib']:>12.2f} / {r['attend_saved_math_gib']:.2f}"
        print(line)
    at = {(r["attention"], r["frames"]): r for r in rows}
    for frames in (16, 32):
        grow = {
            (scheme, key): at[scheme, frames][key] / at[scheme, 8][key]
            for scheme in ("joint", "divided")
            for key in ("attend_gmacs", "gmacs")
        }
        print(
            f"8 -> {frames} frames: attention kernel x{grow['joint', 'attend_gmacs']:.1f} for "
            f"joint (tokens squared), x{grow['divided', 'attend_gmacs']:.1f} for divided; whole "
            f"model x{grow['joint', 'gmacs']:.2f} and x{grow['divided', 'gmacs']:.2f}"
        )
    if peak_breakdown is None:
        print("(attend's saved activations: needs tsfbench.measure.peak_parts, not in this build)")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=5, help="steps timed, and profiled")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--skip-time", action="store_true", help="FLOPs and memory only")
    parser.add_argument("--json", type=Path, help="also write every figure here")
    args = parser.parse_args()
    payload: dict[str, Any] = {}
    if not args.skip_time:
        payload["schemes"] = schemes_table(args.iterations, args.warmup)
    payload["growth"] = growth_table()
    if args.json:
        atomic_write(args.json, json.dumps(payload, indent=2, default=str) + "\n")


if __name__ == "__main__":
    main()
