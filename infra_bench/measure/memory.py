"""Peak host memory over a window: a background thread samples this process's RSS, and
optionally a device's used memory through a callable (NVML)."""
from __future__ import annotations

import threading
from collections.abc import Callable

import psutil


class PeakSampler:
    """Samples RSS (and `device_used`, when given) every `interval_s` between start() and stop()."""

    def __init__(self, interval_s: float = 0.05, device_used: Callable[[], int | None] | None = None):
        self._interval = interval_s
        self._device_used = device_used
        self._proc = psutil.Process()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.peak_rss_bytes = 0
        self.peak_device_used_bytes: int | None = None

    def _sample(self) -> None:
        self.peak_rss_bytes = max(self.peak_rss_bytes, self._proc.memory_info().rss)
        if self._device_used is not None:
            used = self._device_used()
            if used is not None:
                self.peak_device_used_bytes = max(self.peak_device_used_bytes or 0, used)

    def _loop(self) -> None:
        while not self._stop.wait(self._interval):
            self._sample()

    def start(self) -> None:
        self._sample()
        self._thread = threading.Thread(target=self._loop, name="infra-bench-mem", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._sample()
