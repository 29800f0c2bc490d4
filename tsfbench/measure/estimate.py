"""How long a sweep will take, from each configuration's multiply-adds and a measured rate.

A configuration costs its steps (warm-up + timed iterations), each its multiply-adds divided by
the rate this machine reaches on the model (MAC/s), plus what it costs besides its steps (child
process, model build, peak-memory prediction, monitor): its overhead. Multiply-adds come from
`flops.count_flops` on the meta device (a tenth of a second a configuration); a training step
counts 3x an inference step (the backward pass is about two forwards), 4x with activation
checkpointing (one more forward).

Before any configuration has run, the rate is a first guess: on a CPU, a 0.2 s fp32 matrix
product of a ViT-B MLP's shape in this process (the model reaches 90% of it or less, so the
first estimate is on the short side); on a GPU, `GPU_FIRST_RATE` (the sweep's parent must not
create a CUDA context). After each configuration both are measured: the rate from its timed
steps (multiply-adds x iterations / timed seconds), the overhead from its wall time less all
its steps. A configuration that runs out of memory ends early; until then it is counted whole.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tsfbench.config import ProbeSettings, RunConfig

TRAIN_FACTOR = 3.0  # forward + backward (two forwards' work)
CHECKPOINTED_FACTOR = 4.0  # and one more forward, recomputed in backward
GPU_FIRST_RATE = 20e12  # MAC/s before a GPU configuration has run: a stated guess
FIRST_OVERHEAD = 3.0  # s per configuration before one has run (2-core CPU: 2-4 s, `overhead.py`)
AUTO_ITERATIONS = 10  # planned iterations where the count is not fixed (`iterations = "auto"`)
AUTO_WARMUP = 3  # planned warm-up steps for `warmup = "auto"`: the fewest that can settle
LONG = 180.0  # a sweep estimated beyond this says so before it starts
CALIBRATION_TOKENS = 1568  # a ViT-B clip at 8 x 224: 8 x 196 patch tokens


def clock_text(seconds: float) -> str:
    """`0:41:07`: a duration as the progress bar shows it."""
    return str(timedelta(seconds=round(max(seconds, 0))))


@dataclass
class SweepClock:
    """The estimate of a sweep: per configuration, the multiply-adds of one step (batch and
    mode included); the steps each runs; the rate and overhead, replaced by measured ones."""

    macs: list[float]
    steps: int  # warm-up + iterations
    iterations: int
    rate: float  # MAC/s
    overhead: float  # s per configuration besides its steps
    source: str  # how the rate is known, in words: a first guess, or measured
    spent: float = 0.0  # wall seconds of the configurations finished
    _timed: list[tuple[float, float]] = field(default_factory=list)  # (MACs, s) timed
    _overheads: list[float] = field(default_factory=list)
    _started: float | None = None

    def seconds(self, index: int) -> float:
        """The estimated wall time of configuration `index`."""
        return self.overhead + self.steps * self.macs[index] / self.rate

    def remaining(self, done: int) -> float:
        """Estimated seconds of the configurations from `done` on."""
        return sum(self.seconds(index) for index in range(done, len(self.macs)))

    def start(self) -> None:
        self._started = time.monotonic()

    def finished(self, index: int, record: Mapping[str, Any]) -> None:
        """Configuration `index` ended with `record`: learn the rate and overhead from it."""
        now = time.monotonic()
        wall = now - (self._started if self._started is not None else now)
        self.spent += wall
        self._started = now
        mean_ms = record.get("latency_mean_ms")
        iterations = record.get("iterations") or self.iterations
        if mean_ms is None or not mean_ms > 0:  # out of memory, an error: nothing timed
            return
        step = mean_ms / 1e3
        self._timed.append((iterations * self.macs[index], iterations * step))
        self.rate = sum(m for m, _ in self._timed) / sum(s for _, s in self._timed)
        self._overheads.append(max(0.0, wall - (self.steps - self.iterations + iterations) * step))
        # The first configuration also paid for the fork server's start: left out once others ran
        later = self._overheads[1:] or self._overheads
        self.overhead = statistics.median(later)
        self.source = "measured"

    def notice(self, hint: bool) -> str | None:
        """The line printed before a long sweep (None for a short one)."""
        total = self.remaining(0)
        if total <= LONG:
            return None
        text = (
            f"{len(self.macs)} configurations, about {clock_text(total)} here (their "
            f"multiply-adds at {self.rate / 1e9:,.0f} GMAC/s, {self.source})"
        )
        if hint:
            text += "; --predict-only answers the memory question (peak, what fits) in seconds"
        return text


def step_factor(settings: ProbeSettings) -> float:
    """A step's multiply-adds in units of one forward pass."""
    if settings.mode != "train":
        return 1.0
    return CHECKPOINTED_FACTOR if settings.checkpointing else TRAIN_FACTOR


def forward_macs(config: RunConfig, overrides: Mapping[str, object] | None = None) -> float:
    """Multiply-adds of one clip's forward pass; a shrunken model (overrides) counted as built."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from tsfbench.measure.flops import count_flops
    from tsfbench.models.build import build_model, example_input

    if not overrides:
        return float(count_flops(config)["flops_per_view"])
    model = build_model(config, device="meta", **overrides)
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(example_input(config, device="meta"))
    return counter.get_total_flops() / 2  # the counter counts 2 per multiply-add


def cpu_rate() -> float:
    """MAC/s of a ViT-B's own GEMM shapes at 8 x 224 on this CPU: `peaks.gemm_peak`, the one
    matrix-product benchmark of the package, timed once per shape (about 0.2 s)."""
    from tsfbench.measure.peaks import gemm_peak

    return gemm_peak(CALIBRATION_TOKENS, repeats=1) / 2  # FLOP/s -> multiply-adds


def sweep_clock(
    configs: Sequence[RunConfig],
    settings: ProbeSettings,
    overrides: Mapping[str, object] | None = None,
) -> SweepClock | None:
    """The first estimate of a sweep over `configs` with `settings`; None where a model cannot
    be counted (the sweep then shows its plain bar: an estimate never stops a measurement)."""
    counted: dict[RunConfig, float] = {}
    try:
        for config in configs:
            if config not in counted:
                counted[config] = forward_macs(config, overrides)
    except Exception:
        return None
    per_step = settings.batch * step_factor(settings)
    fixed = isinstance(settings.iterations, int)
    iterations = settings.iterations if fixed else AUTO_ITERATIONS
    if settings.target == "cpu":
        rate, source = cpu_rate(), "a first guess from a matrix product"
    else:
        rate, source = GPU_FIRST_RATE, "a stated first guess for a GPU"
    return SweepClock(
        macs=[counted[config] * per_step for config in configs],
        steps=(settings.warmup if isinstance(settings.warmup, int) else AUTO_WARMUP) + iterations,
        iterations=iterations,
        rate=rate,
        overhead=FIRST_OVERHEAD,
        source=source,
    )
