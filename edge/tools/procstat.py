"""Process and machine figures read from /proc and getrusage: resident memory (now and peak), CPU seconds
of a process, of the whole machine by kind (user, system, steal, ...), the CPU model, and a sampler of
the machine's load while a run lasts. Linux only; a figure that cannot be read is None, never a crash."""

from __future__ import annotations

import os
import platform
import resource
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

STAT_FIELDS = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")


def peak_rss_mb() -> float:
    """This process's peak resident memory (getrusage's max RSS), MB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def own_cpu_s() -> float:
    """CPU seconds (user + system) this process has used."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def status_mb(field_name: str, pid: int | str = "self") -> float | None:
    """A memory line of /proc/<pid>/status in MB: VmRSS (now), VmHWM (peak), ..."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field_name + ":"):
                return float(line.split()[1]) / 1024.0
    except (OSError, ValueError, IndexError):
        pass
    return None


def proc_cpu_s(pid: int) -> float | None:
    """CPU seconds (user + system) of process `pid`, from /proc/<pid>/stat."""
    try:
        parts = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (float(parts[11]) + float(parts[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def machine_stat() -> dict[str, float]:
    """The whole machine's CPU seconds since boot by kind (/proc/stat's first line)."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:1 + len(STAT_FIELDS)]
    tick = os.sysconf("SC_CLK_TCK")
    return {k: float(v) / tick for k, v in zip(STAT_FIELDS, fields, strict=False)}


def machine_cpu() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot; busy counts steal (the host took it)."""
    st = machine_stat()
    total = sum(st.values())
    return total - st["idle"] - st["iowait"], total


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


@dataclass
class LoadSampler:
    """Load average and machine CPU busy share every few seconds while the run lasts (`run` in a thread)."""

    every: float = 5.0
    samples: list[tuple[float, float, float]] = field(default_factory=list)  # t, load1, busy share
    _stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        last = machine_cpu()
        t0 = time.monotonic()
        while not self._stop.wait(self.every):
            now = machine_cpu()
            busy = (now[0] - last[0]) / max(1e-9, now[1] - last[1])
            last = now
            self.samples.append((round(time.monotonic() - t0, 1), os.getloadavg()[0], round(busy, 3)))

    def stop(self) -> None:
        self._stop.set()
