"""Parameters of DINO label propagation (no heavy imports, so CLI help stays fast)."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class PropagationConfig:
    """DINO's propagation parameters, defaults as in its script."""

    n_last_frames: int = 7
    size_mask_neighborhood: int = 12
    topk: int = 5
    temperature: float = 0.1
    short_side: int = 480
    size_multiple: int = 64
    batch_size: int = 8

    def as_dict(self) -> dict:
        return asdict(self)
