from collections.abc import Callable
from typing import Any

class Cursor:
    step: int
    head: int
    tail_seen: int
    puts: int
    open: bool
    def log(self, data: Any, step: int | None = None, commit: bool | None = None) -> None: ...
    def put(self, row: dict[str, Any], /) -> bool: ...
    def fold(self) -> None: ...
    def bind(self, *, handoff: Any, map: Any, capacity: int, largest: int, header: int,
             head_field: int, packed: int, packed_head: int, notice_every: int,
             layouts: dict[Any, Any], run_lock: Any, ring_lock: Any, t0: float, offset: float,
             pending: dict[str, Any], summary_data: dict[str, Any],
             summary_rules: list[Any], summary_version: list[int],
             fallback: Callable[..., None]) -> None: ...
    def unbind(self) -> None: ...

def crc32(data: bytes, /) -> int: ...
