"""A process's place under ``torchrun``: shared by data-parallel training (``training.distributed``) and sharded
corpus runs (``explain.evaluate``), which must not import each other."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world > 1
