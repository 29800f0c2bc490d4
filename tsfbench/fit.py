"""What fits on a card: the budget, the axes searched and the search itself, as plain logic.

Torch-free, so `tsfbench fit` and suites check their input before anything loads torch; the
predictions behind a search are `measure/fit.py`'s. The budget is the card's memory less a
context reserve (the CUDA context and library workspaces, which no tensor accounts for) less an
allocator margin (fragmentation), each stated in the answer. Peak memory grows with each axis
(frames, crop, batch), so a search of the bracket around the budget (regula falsi, `search`)
finds where it crosses it in a handful of predictions.
"""

from __future__ import annotations

import math
from collections.abc import Generator, Mapping
from dataclasses import dataclass, field
from typing import Any

from tsfbench.cards import GIB, card
from tsfbench.config import PATCH, RunConfig, parse_choices, parse_memory
from tsfbench.errors import ConfigError
from tsfbench.models.registry import get_preset

AXES = ("frames", "size", "batch")
# Searched from the smallest value a model takes up to these; a value past a bound is never
# predicted, so "all fit up to the bound" is an answer. 1024 frames is 10x TimeSformer-L's
# clip; 2048 px and batch 1024 fit no ViT-B training step on any card of `cards.CARDS`.
BOUNDS = {"frames": (1, 1024), "size": (PATCH, 2048), "batch": (1, 1024)}
DEFAULT_MARGIN = 0.05
# What the allocator never sees: the CUDA context, the kernels' code and cuBLAS / cuDNN
# workspaces. Measured on the GPU where there is one (`measure.fit.context_reserve`).
DEFAULT_RESERVE = 512 * 2**20
DEFAULT_RESERVE_SOURCE = (
    "an estimate, not measured (no GPU here): a PyTorch CUDA context with cuBLAS loaded takes "
    "about 0.5 GiB on Ampere and Hopper cards (CUDA 12, lazy module loading)"
)
NONE_FITS, ALL_FIT, BOUNDARY = "none fits", "all fit", "boundary"


def parse_axes(text: str, name: str = "--axis") -> tuple[str, ...]:
    return tuple(parse_choices(text, name, AXES))


def parse_bounds(text: str | None, name: str = "--bounds") -> dict[str, tuple[int, int]]:
    """'frames=8..128,size=224..896' -> each axis's (low, high); the others keep `BOUNDS`."""
    bounds = dict(BOUNDS)
    for item in [part for part in (text or "").replace(" ", "").split(",") if part]:
        axis, _, span = item.partition("=")
        low, _, high = span.partition("..")
        try:
            pair = (int(low), int(high))
        except ValueError:
            pair = (0, 0)
        if axis not in AXES or not 0 < pair[0] <= pair[1]:
            raise ConfigError(
                f"{name}: cannot read {item!r}; expected AXIS=LOW..HIGH with AXIS in "
                f"{', '.join(AXES)} and 0 < LOW <= HIGH, e.g. frames=8..128"
            )
        if axis == "size" and (pair[0] % PATCH or pair[1] % PATCH):
            raise ConfigError(f"{name}: {item!r}; crops are multiples of the patch size {PATCH}")
        bounds[axis] = pair
    return bounds


@dataclass(frozen=True)
class Budget:
    """The memory a step may use: the card's, less the reserve, less the margin."""

    memory: int  # bytes of the card (or `--memory`)
    reserve: int  # CUDA context and workspaces
    reserve_source: str  # measured where, or why it is an estimate
    margin: float  # fraction of what the reserve leaves, for the allocator's fragmentation
    card: str | None = None  # a `cards.CARDS` name, None for `--memory`

    def __post_init__(self) -> None:
        if self.memory <= self.reserve:
            raise ConfigError(
                f"memory: {self.memory / GIB:.2f} GiB is no more than the context reserve "
                f"{self.reserve / GIB:.2f} GiB ({self.reserve_source}); give a larger --memory "
                "or a smaller --reserve"
            )

    @property
    def margin_bytes(self) -> int:
        return int((self.memory - self.reserve) * self.margin)

    @property
    def budget(self) -> int:
        return self.memory - self.reserve - self.margin_bytes

    def line(self) -> str:
        """The answer's budget line: every deduction, with its reason."""
        what = f"{self.card} " if self.card else ""
        return (
            f"budget {self.budget / GIB:.2f} GiB = {what}{self.memory / GIB:.2f} GiB"
            f" - reserve {self.reserve / GIB:.2f} GiB ({self.reserve_source})"
            f" - margin {100 * self.margin:g}% ({self.margin_bytes / GIB:.2f} GiB)"
        )

    def as_record(self) -> dict[str, Any]:
        return {
            "card": self.card,
            "memory_bytes": self.memory,
            "reserve_bytes": self.reserve,
            "reserve_source": self.reserve_source,
            "margin": self.margin,
            "margin_bytes": self.margin_bytes,
            "budget_bytes": self.budget,
        }


@dataclass(frozen=True)
class FitSettings:
    """What a fit answer asks: on which memory, with which margins, along which axes.

    `reserve` None: measured on this machine's GPU, or `DEFAULT_RESERVE` without one.
    """

    memory: int
    card: str | None = None
    margin: float = DEFAULT_MARGIN
    reserve: int | None = None
    axes: tuple[str, ...] = AXES
    bounds: Mapping[str, tuple[int, int]] = field(default_factory=lambda: dict(BOUNDS))

    def __post_init__(self) -> None:
        if not 0 <= self.margin < 1:
            raise ConfigError(f"margin: {self.margin!r}; expected a fraction in [0, 1), e.g. 0.05")
        if self.reserve is not None:
            Budget(self.memory, self.reserve, "given", self.margin)  # checks memory > reserve
        elif self.memory <= DEFAULT_RESERVE:
            Budget(self.memory, DEFAULT_RESERVE, DEFAULT_RESERVE_SOURCE, self.margin)

    def budget(self, reserve: int, source: str) -> Budget:
        return Budget(self.memory, reserve, source, self.margin, self.card)

    def as_dict(self) -> dict[str, Any]:
        return {
            "memory": self.memory,
            "card": self.card,
            "margin": self.margin,
            "reserve": self.reserve,
            "axes": list(self.axes),
            "bounds": {axis: list(pair) for axis, pair in self.bounds.items()},
        }


def fit_settings(
    memory: str | int | None = None,
    gpu: str | None = None,
    *,
    margin: float = DEFAULT_MARGIN,
    reserve: str | int | None = None,
    axes: str = ",".join(AXES),
    bounds: str | None = None,
    name: Any = lambda key: f"--{key}",
) -> FitSettings:
    """`FitSettings` from a command's or a suite's texts: `memory` ('24GiB') or `gpu` (a
    `cards.CARDS` name), one of them; `name(key)` is how an error names the option."""
    if (memory is None) == (gpu is None):
        raise ConfigError(
            f"{name('memory')} / {name('gpu')}: give one of them, e.g. --gpu v100-32gb or "
            "--memory 24GiB (--gpu list shows the cards)"
        )
    if gpu is not None:
        chosen = card(gpu, name("gpu"))
        size, label = chosen.memory_bytes, chosen.name
    else:
        size, label = parse_memory(memory, name("memory")), None  # type: ignore[arg-type]
    fields = {
        "reserve": None if reserve is None else _bytes_or_zero(reserve, name("reserve")),
        "axes": parse_axes(axes, name("axis")),
        "bounds": parse_bounds(bounds, name("bounds")),
    }
    try:
        return FitSettings(memory=size, card=label, margin=margin, **fields)
    except ConfigError as err:  # relabel: the checks name a field, the user gave an option
        field_name, _, message = str(err).partition(": ")
        raise ConfigError(f"{name(field_name)}: {message}") from None


def _bytes_or_zero(text: str | int, name: str) -> int:
    """A size as `parse_memory` reads it, or 0 (no reserve: a budget of the whole memory)."""
    return 0 if str(text).strip().lower() in ("0", "0b") else parse_memory(text, name)


@dataclass(frozen=True)
class Span:
    """The values of one axis a search may try: low, low + step, ..., high."""

    axis: str
    low: int
    high: int
    step: int

    @property
    def count(self) -> int:
        return (self.high - self.low) // self.step + 1

    @property
    def expected_predictions(self) -> int:
        """Predictions a search of this span typically needs (`search`), for progress bars."""
        return min(self.count, 3 + math.ceil(math.log2(self.count) / 3))


def span(axis: str, config: RunConfig, bounds: Mapping[str, tuple[int, int]]) -> Span:
    """The values of `axis` to search for `config`: frames and batch in steps of 1 (a SlowFast:
    of its frame ratio), crops in steps of the patch size; never below what the model takes."""
    low, high = bounds[axis]
    preset = get_preset(config.model)
    step = 1
    if axis == "size":
        step = PATCH
        low = max(low, -(-preset.min_size // PATCH) * PATCH)
    elif axis == "frames" and not preset.has_attention:
        step = preset.frame_multiple
        low = max(low, preset.min_frames)
        low = -(-low // step) * step
    high = low + (high - low) // step * step if high >= low else high
    if high < low:
        raise ConfigError(
            f"--bounds: {axis} {bounds[axis][0]}..{bounds[axis][1]} holds no value "
            f"{config.model} takes (from {low} in steps of {step})"
        )
    return Span(axis, low, high, step)


def check_fixed(
    config: RunConfig, batch: int, settings: FitSettings, name: Any = lambda key: f"--{key}"
) -> None:
    """The values held fixed while another axis is searched must lie in their axis's bounds, and
    every searched axis must hold a value the model takes (checked before anything runs)."""
    for axis in settings.axes:
        span(axis, config, settings.bounds)
    for axis, value in (("frames", config.frames), ("size", config.size), ("batch", batch)):
        low, high = settings.bounds[axis]
        if not low <= value <= high and any(other != axis for other in settings.axes):
            raise ConfigError(
                f"{name(axis)}: {value} is outside the {axis} bounds {low}..{high} of the "
                f"search; give a value in them or widen them ({name('bounds')} "
                f"{axis}={min(low, value)}..{max(high, value)})"
            )


@dataclass(frozen=True)
class Boundary:
    """Where an axis crosses the budget: the largest value that fits and the next one."""

    answer: str  # BOUNDARY | NONE_FITS | ALL_FIT
    largest: int | None = None  # None: nothing fits
    largest_peak: int | None = None
    next: int | None = None  # the smallest value that does not fit; None: all fit
    next_peak: int | None = None

    def as_record(self) -> dict[str, Any]:
        return {
            "answer": self.answer,
            "largest": self.largest,
            "largest_peak_bytes": self.largest_peak,
            "next": self.next,
            "next_peak_bytes": self.next_peak,
        }


def search(values: Span, budget: int, start: int | None = None) -> Generator[int, int, Boundary]:
    """Find the largest of `values` whose peak is within `budget`: yields a value to predict,
    is sent its peak. Peaks grow along the axis, so one value that fits means all below fit.

    `start` (the value the other axes hold, predicted for them already) goes first, then the
    far end (or the near one) to bracket the answer; then guesses inside the bracket where the
    straight line between its two peaks crosses the budget (regula falsi, with the Illinois
    rule: an end kept twice counts half, so a curved peak, joint attention's quadratic one,
    cannot stall it). Every guess lies strictly inside the bracket, so the search ends, and the
    answer is exact whatever the curve, as long as it grows. On straight-to-quadratic curves over
    1..1024: 6 predictions on average, 11 at most (a bisection: 12).
    """
    peaks: dict[int, int] = {}
    fits: int | None = None  # index of the largest value known to fit
    over: int | None = None  # index of the smallest value known not to fit
    last = values.count - 1
    first = None
    if start is not None and values.low <= start <= values.high:
        first = (start - values.low) // values.step
    side = ""  # which side the last guess fell on: "fits" or "over"
    weight = {"fits": 1.0, "over": 1.0}  # Illinois: a side kept twice counts half as far

    def wanted() -> int | None:
        if fits is None and over is None:
            return first if first is not None else 0
        if fits is None:
            return 0 if over else None  # is the smallest one over too?
        if over is None:
            return last if fits < last else None
        if over - fits <= 1:
            return None
        below = (budget - peaks[fits]) * weight["fits"]
        above = (peaks[over] - budget) * weight["over"]
        guess = fits + int(below / (below + above) * (over - fits))
        return min(max(guess, fits + 1), over - 1)

    while (index := wanted()) is not None:
        peak = yield values.low + index * values.step
        peaks[index] = peak
        now = "fits" if peak <= budget else "over"
        if fits is not None and over is not None:  # a guess inside the bracket
            kept = "over" if now == "fits" else "fits"
            weight[kept] = weight[kept] / 2 if side == now else 1.0
            weight[now] = 1.0
            side = now
        if now == "fits":
            fits = index if fits is None else max(fits, index)
        else:
            over = index if over is None else min(over, index)
    value = lambda index: values.low + index * values.step  # noqa: E731
    if fits is None:
        return Boundary(NONE_FITS, next=value(0), next_peak=peaks[0])
    if over is None:
        return Boundary(ALL_FIT, largest=value(fits), largest_peak=peaks[fits])
    return Boundary(BOUNDARY, value(fits), peaks[fits], value(over), peaks[over])
