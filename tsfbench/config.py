"""What to measure: frozen run configurations, and the one place user input is validated.

Every check raises `ConfigError` with a message that names the parameter and what it accepts;
the CLI prints it on one line and exits 2. Past this module, inputs are assumed valid.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass

from tsfbench.models.registry import PRESETS, get_preset
from tsfbench.models.timesformer import ATTENTIONS, POS_EMBEDS, default_pos_embed

PATCH = 16
RANGE_FORMS = "a value (8), a list (8,16,32) or a range A..B[:STEP] (8..96 is 8,16,...,96)"


class ConfigError(ValueError):
    """Bad user input: the message names the parameter and the accepted values."""


def parse_ints(text: str | int, name: str) -> list[int]:
    """Parse '8', '8,16,32', '8..96' (step = start) or '224..560:112' into positive integers."""
    values: list[int] = []
    for item in str(text).replace(" ", "").split(","):
        try:
            if ".." in item:
                bounds, _, step_text = item.partition(":")
                start_text, _, stop_text = bounds.partition("..")
                start, stop = int(start_text), int(stop_text)
                step = int(step_text) if step_text else start
                if start <= 0 or step <= 0 or stop < start:
                    raise ValueError
                values.extend(range(start, stop + 1, step))
            else:
                if ":" in item or int(item) <= 0:
                    raise ValueError
                values.append(int(item))
        except ValueError:
            raise ConfigError(
                f"{name}: cannot read {item!r}; expected positive integers: {RANGE_FORMS}"
            ) from None
    return list(dict.fromkeys(values))


def parse_choices(text: str, name: str, allowed: Sequence[str]) -> list[str]:
    """Parse 'divided', 'joint,divided' or 'all' against the allowed names."""
    items = [item for item in text.replace(" ", "").split(",") if item]
    if items == ["all"]:
        return list(allowed)
    unknown = [item for item in items if item not in allowed]
    if unknown or not items:
        shown = unknown[0] if unknown else text
        raise ConfigError(f"{name}: unknown value {shown!r}; accepted: {', '.join(allowed)}, all")
    return list(dict.fromkeys(items))


@dataclass(frozen=True)
class RunConfig:
    """One model configuration to measure; a flat record so results can be pivoted."""

    model: str = "base"  # a preset name from the registry
    attention: str = "divided"
    frames: int = 8
    size: int = 224
    pos_embed: str = ""  # "" = the scheme's default (released: `space` has no time table)
    classes: int = 400
    views: int = 3

    def __post_init__(self) -> None:
        if self.model not in PRESETS:
            raise ConfigError(f"model: unknown {self.model!r}; accepted: {', '.join(PRESETS)}")
        if self.attention not in ATTENTIONS:
            raise ConfigError(
                f"attention: unknown scheme {self.attention!r}; accepted: {', '.join(ATTENTIONS)}"
            )
        if not self.pos_embed:
            object.__setattr__(self, "pos_embed", default_pos_embed(self.attention))
        if self.pos_embed not in POS_EMBEDS:
            raise ConfigError(
                f"pos_embed: unknown {self.pos_embed!r}; accepted: {', '.join(POS_EMBEDS)}"
            )
        for name in ("frames", "size", "classes", "views"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) <= 0:
                raise ConfigError(f"{name}: {getattr(self, name)!r} must be a positive integer")
        if self.size % PATCH:
            lower = self.size // PATCH * PATCH
            hint = f"{lower} or {lower + PATCH}" if lower else str(PATCH)
            raise ConfigError(
                f"size: {self.size} is not a multiple of the patch size {PATCH}; use e.g. {hint}"
            )

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def expand(
    models: Iterable[str],
    attentions: Iterable[str] | None = None,
    frames: Iterable[int] | None = None,
    sizes: Iterable[int] | None = None,
    *,
    pos_embed: str = "",
    classes: int | None = None,
    views: int | None = None,
) -> list[RunConfig]:
    """The grid of configurations; an axis left as None takes each preset's own value."""
    configs = []
    for model in models:
        preset = get_preset(model)
        grid = itertools.product(
            attentions or [preset.attention], frames or [preset.frames], sizes or [preset.size]
        )
        for attention, frame_count, size in grid:
            configs.append(
                RunConfig(
                    model=model,
                    attention=attention,
                    frames=frame_count,
                    size=size,
                    pos_embed=pos_embed,
                    classes=preset.num_classes if classes is None else classes,
                    views=preset.views if views is None else views,
                )
            )
    return list(dict.fromkeys(configs))
