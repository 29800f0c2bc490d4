"""What holds the predicted training peak: joint vs divided at 8 / 16 / 32 frames, sdpa and math.

    python benchmarks/peak_parts.py                          # ViT-B, 224 px, fp32, batch 1
    python benchmarks/peak_parts.py --frames 8,16 --json out.json

Figure 3 of the paper (joint runs out of memory where divided does not) explained in bytes from
`peak_breakdown` (the predictor's own step, no run: about a second or two per configuration on a
CPU): the model state (parameters, gradients, momentum, input), the activations saved for the
backward, the part of those the attention kernel (`attend`) saves, and the op running at the
peak. The closing sentences are worded from the figures printed above them.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from tsfbench.config import GIB, ProbeSettings, RunConfig
from tsfbench.measure.peak_parts import peak_breakdown

STATE = ("parameters", "buffers", "gradients", "optimizer_state", "inputs")


def summarise(
    attention: str, frames: int, backend: str, rows: Sequence[Mapping[str, Any]]
) -> dict[str, Any]:
    """One configuration's peak in a few figures (bytes), from its breakdown rows."""
    saved = [row for row in rows if row["category"] == "activations"]
    (temporaries,) = [row for row in rows if row["category"] == "temporaries"]
    largest = max(saved, key=lambda row: row["bytes"], default={"part": "-"})
    return {
        "attention": attention,
        "frames": frames,
        "backend": backend,
        "peak_bytes": sum(row["bytes"] for row in rows),
        "state_bytes": sum(row["bytes"] for row in rows if row["category"] in STATE),
        "activations_bytes": sum(row["bytes"] for row in saved),
        "attend_bytes": sum(row["bytes"] for row in saved if row["part"].endswith(".attend")),
        "largest_part": largest["part"],
        "op_at_peak": temporaries["op"],
    }


def _find(records: Sequence[Mapping[str, Any]], attention: str, frames: int, backend: str) -> Any:
    (record,) = [
        r
        for r in records
        if (r["attention"], r["frames"], r["backend"]) == (attention, frames, backend)
    ]
    return record


def growth_sentences(records: Sequence[Mapping[str, Any]]) -> list[str]:
    """What makes joint's memory grow faster than divided's, in the figures of `records`
    (needs joint and divided at two or more clip lengths)."""
    frames = sorted({r["frames"] for r in records})
    low, high = frames[0], frames[-1]
    sentences = []
    for backend in sorted({r["backend"] for r in records}, key=lambda b: b != "math"):
        joint = [_find(records, "joint", f, backend) for f in (low, high)]
        divided = [_find(records, "divided", f, backend) for f in (low, high)]
        grow = lambda pair, key: pair[1][key] / pair[0][key]  # noqa: E731
        gib = lambda pair, key: f"{pair[0][key] / GIB:.1f} -> {pair[1][key] / GIB:.1f} GiB"  # noqa: E731
        share = 100 * joint[1]["attend_bytes"] / joint[1]["peak_bytes"]
        sentences.append(
            f"{backend}: from {low} to {high} frames joint's predicted peak grows"
            f" {grow(joint, 'peak_bytes'):.1f}x ({gib(joint, 'peak_bytes')}) and divided's"
            f" {grow(divided, 'peak_bytes'):.1f}x ({gib(divided, 'peak_bytes')}); the attention"
            f" kernel's saved activations grow {grow(joint, 'attend_bytes'):.1f}x for joint"
            f" ({gib(joint, 'attend_bytes')}, {share:.0f}% of its peak at {high} frames) and"
            f" {grow(divided, 'attend_bytes'):.1f}x for divided ({gib(divided, 'attend_bytes')})."
        )
    ratio = (high / low) ** 2
    sentences.append(
        f"Why: math keeps each block's softmax weights for the backward, heads x (F*N)^2 for joint"
        f" ({ratio:.0f}x from {low} to {high} frames) against heads x (F*N^2 + N*F^2) for divided"
        f" (about {high / low:.0f}x); sdpa recomputes them, so every scheme's saved activations"
        " grow with the token count only (F*N*D)."
    )
    return sentences


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", default="8,16,32")
    parser.add_argument("--backends", default="sdpa,math")
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--depth", type=int, help="smaller model (a quick check)")
    parser.add_argument("--dim", type=int)
    parser.add_argument("--heads", type=int)
    parser.add_argument("--json", type=Path, help="also write the records here")
    args = parser.parse_args()
    sizes = {"depth": args.depth, "dim": args.dim, "heads": args.heads}
    overrides = {key: value for key, value in sizes.items() if value is not None}
    records = []
    print(f"{'scheme':8} {'F':>3} {'backend':7} {'peak GiB':>9} {'state':>6} {'saved':>6}"
          f" {'attend':>7}  largest saved part   op at the peak   (s)")  # fmt: skip
    for attention in ("joint", "divided"):
        for frames in (int(f) for f in args.frames.split(",")):
            for backend in args.backends.split(","):
                config = RunConfig(attention=attention, frames=frames, size=args.size)
                settings = ProbeSettings(mode="train", backend=backend, device="cpu")
                began = time.perf_counter()
                rows = peak_breakdown(config, settings, overrides)
                seconds = time.perf_counter() - began
                record = summarise(attention, frames, backend, rows)
                records.append(record | {"rows": rows})
                gib = {key: record[f"{key}_bytes"] / GIB for key in ("peak", "state", "attend")}
                print(f"{attention:8} {frames:3} {backend:7} {gib['peak']:9.2f} {gib['state']:6.2f}"
                      f" {record['activations_bytes'] / GIB:6.2f} {gib['attend']:7.2f}"
                      f"  {record['largest_part']:19} {record['op_at_peak']}  ({seconds:.1f})",
                      flush=True)  # fmt: skip
    print("GiB; state: parameters, gradients, momentum and input; saved: activations kept for the"
          " backward; attend: of those, the attention kernel's")  # fmt: skip
    for sentence in growth_sentences(records):
        print(sentence)
    if args.json:
        args.json.write_text(json.dumps(records, indent=1))


if __name__ == "__main__":
    main()
