"""Calibration points measured while the machine was busy, and what `calibrate` does with them.

A record whose cell ran while other processes took over BUSY_FRACTION of the host's CPU time
(measure/contention.py) reads slower than the machine is, with no error. Each fit key (an LLM case,
a diffusion/TTS/embedding MFU, a speech-LM overhead, a device's power) is fitted from its quiet
records where it has any: its busy ones are left out, each with why. A key with busy records only is
still fitted from them (they are all there is), and the calibration file says so under `busy_only`,
so that `calibrate` warns and `predict` notes it wherever that fit is used.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from ..measure.contention import busy_words

T = TypeVar("T")


def busy_shares(records: list[dict]) -> dict[str, float]:
    """Others' share of the CPU time of each record measured on a busy machine, by the `source` its
    calibration points carry ('record RUN/CELL')."""
    out = {}
    for r in records:
        share = (r.get("metrics") or {}).get("host_others_cpu_frac")
        if busy_words(share):
            out[f"record {r['run_id']}/{r['cell_id']}"] = share
    return out


@dataclass
class Quiet:
    """The busy shares of the records being calibrated with; `keep` sorts each kind of point by them."""
    shares: dict[str, float]
    left_out: list[str] = field(default_factory=list)   # calibrate's "not used:" lines
    busy_only: dict[str, dict[str, str]] = field(default_factory=dict)  # fit -> key -> the line saying so

    def keep(self, fit: str, what: str, points: list[T], key: Callable[[T], str], source: Callable[[T], str]) -> list[T]:
        """`points` less the busy ones of each key that has quiet ones; a key with busy points only keeps
        them, and is listed under `busy_only[fit]`. `what` names the key's kind in the lines."""
        quiet = {key(p) for p in points if source(p) not in self.shares}
        kept = []
        for p in points:
            k, src = key(p), source(p)
            if src not in self.shares:
                kept.append(p)
            elif k in quiet:
                self.left_out.append(f"{src}: {busy_words(self.shares[src])}; left out, as the {what} {k} has "
                                     f"quiet records to fit")
            else:
                kept.append(p)
        for k in dict.fromkeys(key(p) for p in kept if key(p) not in quiet):
            busy = ", ".join(f"{source(p)}: others used {self.shares[source(p)]:.0%}" for p in kept if key(p) == k)
            self.busy_only.setdefault(fit, {})[k] = (
                f"the {what} {k} was fitted only from records measured while the machine was busy ({busy} of the "
                f"CPU time), which likely read slower than it is; re-run them when the machine is idle and "
                f"calibrate again")
        return kept
