"""Common GPUs and their memory, as data (`tsfbench fit --gpu NAME`, a suite's `gpu` key).

Torch-free: `fit --gpu list` and option checks answer without loading torch.

Capacities are the vendor datasheets' figures as written ("32 GB HBM2"). NVIDIA's "GB" of
memory capacity is binary: memory chips and HBM stacks come in power-of-two sizes (a 32 GB V100
has four 8 GiB HBM2 stacks), so the bytes here are the figure in GiB. On a GDDR card with ECC on
(the default of the data-centre cards: T4, A10, L4, L40S) the ECC bits take 6.25% of the DRAM
(CUDA C++ Best Practices Guide, "ECC"), so the bytes are 15/16 of it. What CUDA reports is a
little lower still: the driver keeps some for itself (a V100-PCIE-32GB shows 32480 MiB of 32768
in `nvidia-smi`; a T4 15110 MiB of 15360 in `deviceQuery`), 1-2% that the fit margin covers; give
`--memory` with `nvidia-smi`'s total to be exact.
"""

from __future__ import annotations

from dataclasses import dataclass

from tsfbench.config import GIB
from tsfbench.errors import ConfigError


@dataclass(frozen=True)
class Card:
    name: str  # what `--gpu` takes
    label: str  # the vendor's product name
    datasheet: str  # the capacity as the datasheet writes it
    gib: float  # the datasheet figure, read as GiB
    ecc_gddr: bool = False  # GDDR with ECC on by default: 1/16 holds ECC bits

    @property
    def memory_bytes(self) -> int:
        """The memory a program can plan with, ECC taken out where it is on by default."""
        total = int(self.gib * GIB)
        return total * 15 // 16 if self.ecc_gddr else total


CARDS: dict[str, Card] = {
    card.name: card
    for card in (
        Card("v100-16gb", "Tesla V100 16GB", "16 GB HBM2", 16),
        Card("v100-32gb", "Tesla V100 32GB", "32 GB HBM2", 32),
        Card("t4", "T4", "16 GB GDDR6", 16, ecc_gddr=True),
        Card("a10", "A10", "24 GB GDDR6", 24, ecc_gddr=True),
        Card("l4", "L4", "24 GB GDDR6", 24, ecc_gddr=True),
        Card("a100-40gb", "A100 40GB", "40 GB HBM2", 40),
        Card("a100-80gb", "A100 80GB", "80 GB HBM2e", 80),
        Card("h100-80gb", "H100 80GB (SXM: HBM3, PCIe: HBM2e)", "80 GB HBM3", 80),
        Card("h200", "H200 (SXM and NVL)", "141 GB HBM3e", 141),
        # DGX / HGX B200: 1,440 GB for 8 GPUs (announced as 192 GB; 180 GB are enabled)
        Card("b200", "B200 (DGX / HGX)", "180 GB HBM3e", 180),
        Card("rtx-3090", "GeForce RTX 3090", "24 GB GDDR6X", 24),
        Card("rtx-4090", "GeForce RTX 4090", "24 GB GDDR6X", 24),
        Card("l40s", "L40S", "48 GB GDDR6", 48, ecc_gddr=True),
    )
}


def card(name: str, option: str = "--gpu") -> Card:
    """The card named `name` (case and `_` / space forgiven: `V100_32GB`); one line if unknown."""
    key = name.strip().lower().replace("_", "-").replace(" ", "-")
    if key not in CARDS:
        raise ConfigError(
            f"{option}: unknown GPU {name!r}; accepted: {', '.join(CARDS)} "
            "(or give --memory, e.g. 24GiB)"
        )
    return CARDS[key]


def card_rows() -> list[dict[str, object]]:
    """The table `fit --gpu list` prints: name, product, datasheet figure, bytes planned with."""
    return [
        {
            "gpu": c.name,
            "product": c.label,
            "datasheet": c.datasheet,
            "memory_bytes": c.memory_bytes,
            "memory_gib": c.memory_bytes / GIB,
            "ecc": "on by default (1/16)" if c.ecc_gddr else "-",
        }
        for c in CARDS.values()
    ]
