"""How much of the host's CPU time other processes took while a cell was measured.

A shared or busy machine slows a cell without any error: on a 2-core VM with another job running, the
same llama-tiny cell read 210 ms TPOT against 13 ms idle. The kernel's /proc/stat counts every CPU's
busy and idle time (steal included: a hypervisor's other guests); this process's own CPU time
(os.times, all its threads and reaped children) is taken off, and the rest, over all the CPU time
that passed, is what others used. Linux only; elsewhere nothing is said.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

BUSY_FRACTION = 0.25  # others' share of all CPU time above which a record says the machine was busy
_STAT = Path("/proc/stat")
_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


@dataclass(frozen=True)
class _Snapshot:
    busy_s: float
    total_s: float
    own_s: float


def _snapshot() -> _Snapshot | None:
    try:
        fields = [int(x) for x in _STAT.read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError, IndexError):
        return None
    user, nice, system, idle, iowait, irq, softirq, steal = (fields + [0] * 8)[:8]
    busy = user + nice + system + irq + softirq + steal
    t = os.times()
    return _Snapshot(busy / _TICK, (busy + idle + iowait) / _TICK, t.user + t.system + t.children_user + t.children_system)


class Contention:
    """`start()` before a cell, `others()` after: others' share of the host's CPU time in between, or None."""

    def start(self) -> Contention:
        self._before = _snapshot()
        return self

    def others(self) -> float | None:
        after = _snapshot()
        if self._before is None or after is None or after.total_s - self._before.total_s <= 0:
            return None
        others = (after.busy_s - self._before.busy_s) - (after.own_s - self._before.own_s)
        return min(max(others / (after.total_s - self._before.total_s), 0.0), 1.0)


def note(share: float | None) -> str | None:
    """The record's note when others took more than BUSY_FRACTION of the CPU time."""
    if share is None or share <= BUSY_FRACTION:
        return None
    return (f"machine busy: other processes used {share:.0%} of the host's CPU time during this cell; its timings "
            f"are likely slower than on an idle machine (re-run it when the machine is idle)")


def busy_words(share: float | None) -> str | None:
    """A progress line's words for a busy machine, or None when it was not."""
    return f"machine busy: others used {share:.0%} of the CPU time" if note(share) else None
