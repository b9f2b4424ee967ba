"""Which load points to run: a fixed list, a doubling sweep, or an SLO search.

- Sweep: start, 2x, 4x ... until a point saturates (the early stop fired), every request of a
  point failed, its throughput grew by less than 10% over the best so far, or `max_points`.
- SLO search: double from the start while points meet the SLO (halve while they miss it, for a
  rate), then bisect between the highest level that met it and the lowest that missed, until
  the two are within 5% (a rate) or adjacent (a concurrency), or `max_points` points ran.
  The answer is the highest level that met the SLO; a saturated point misses it.
"""
from __future__ import annotations

from dataclasses import dataclass, field

SWEEP_MIN_GAIN = 1.10
SEARCH_REL_TOLERANCE = 0.05


@dataclass
class PointSummary:
    """What a finished point tells the strategy."""
    level: float
    throughput: float
    saturated: bool = False
    all_failed: bool = False
    slo_met: bool | None = None


@dataclass
class FixedLevels:
    levels: list[float]
    done: list[PointSummary] = field(default_factory=list)
    stop_reason: str = "every level ran"

    def next_level(self) -> float | None:
        return self.levels[len(self.done)] if len(self.done) < len(self.levels) else None

    def tell(self, o: PointSummary) -> None:
        self.done.append(o)


@dataclass
class _Stepping:
    """A start level, a budget of points, the points done and, once it ends, why."""
    start: float
    max_points: int
    done: list[PointSummary] = field(default_factory=list)
    stop_reason: str | None = None

    def _over(self) -> bool:
        """Stopped already, or out of points (which then becomes the reason)."""
        if not self.stop_reason and len(self.done) >= self.max_points:
            self.stop_reason = f"{self.max_points} points (--max-points)"
        return self.stop_reason is not None


@dataclass
class DoublingSweep(_Stepping):
    def next_level(self) -> float | None:
        return None if self._over() else self.start * 2 ** len(self.done)

    def tell(self, o: PointSummary) -> None:
        best = max((d.throughput for d in self.done), default=None)
        self.done.append(o)
        if o.saturated:
            self.stop_reason = f"saturated at {o.level:g}"
        elif o.all_failed:
            self.stop_reason = f"every request failed at {o.level:g}"
        elif best is not None and o.throughput < SWEEP_MIN_GAIN * best:
            self.stop_reason = (f"throughput stopped growing at {o.level:g} "
                                f"({o.throughput:.3g} req/s vs {best:.3g} before)")


@dataclass(kw_only=True)
class SloSearch(_Stepping):
    """Highest level meeting the SLO; `integer` levels (a concurrency) never go below 1."""
    integer: bool
    lo: float | None = None     # highest level that met the SLO
    hi: float | None = None     # lowest level that missed it

    def next_level(self) -> float | None:
        if self._over():
            return None
        if not self.done:
            return self.start
        if self.hi is None:
            return self.lo * 2
        if self.lo is None:
            nxt = self.hi / 2
            if self.integer and self.hi <= 1:
                self.stop_reason = "even concurrency 1 misses the SLO"
                return None
            return max(1, int(nxt)) if self.integer else nxt
        if (self.integer and self.hi - self.lo <= 1) or \
                (not self.integer and (self.hi - self.lo) <= SEARCH_REL_TOLERANCE * self.hi):
            self.stop_reason = f"bracketed: meets at {self.lo:g}, misses at {self.hi:g}"
            return None
        mid = (self.lo + self.hi) / 2
        return int(mid) if self.integer else mid

    def tell(self, o: PointSummary) -> None:
        self.done.append(o)
        if o.slo_met and not o.saturated:
            self.lo = o.level if self.lo is None else max(self.lo, o.level)
        else:
            self.hi = o.level if self.hi is None else min(self.hi, o.level)

    @property
    def best(self) -> float | None:
        return self.lo
