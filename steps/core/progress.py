"""Progress for long steps: a tqdm bar on a terminal, periodic plain log lines otherwise
(Snakemake log files, SLURM output), so people can see a step is alive and how far it is."""

from __future__ import annotations

import logging
import sys
import time

log = logging.getLogger("paperzoo")


def setup_logging() -> None:
    """One format for every step: `HH:MM:SS paperzoo message` on stderr."""
    if not log.handlers:
        h = logging.StreamHandler(sys.stderr)
        h.setFormatter(logging.Formatter("%(asctime)s %(name)s %(message)s", "%H:%M:%S"))
        log.addHandler(h)
        log.setLevel(logging.INFO)
        log.propagate = False


def _fmt_duration(s: float) -> str:
    s = int(s)
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


class Progress:
    """Counts work done towards `total`. Use `update(n, **stats)`; `close()` at the end.

    On a terminal it drives a tqdm bar; otherwise it logs a line at most every `every_s` seconds
    (and once at the end) with the rate, the ETA and the latest stats.
    """

    def __init__(self, total: int, desc: str, every_s: float = 30.0, initial: int = 0, tty: bool | None = None):
        self.total, self.desc, self.every_s = total, desc, every_s
        self.n = initial
        self.start_n = initial
        self.t0 = self.last = time.monotonic()
        self.stats: dict = {}
        self.bar = None
        if sys.stderr.isatty() if tty is None else tty:
            from tqdm import tqdm

            self.bar = tqdm(total=total, initial=initial, desc=desc, dynamic_ncols=True, file=sys.stderr)

    def update(self, n: int = 1, **stats) -> None:
        self.n += n
        self.stats.update(stats)
        if self.bar is not None:
            self.bar.update(n)
            if stats:
                self.bar.set_postfix({k: _short(v) for k, v in stats.items()}, refresh=False)
            return
        now = time.monotonic()
        if now - self.last >= self.every_s:
            self.last = now
            log.info(self.line())

    def line(self) -> str:
        elapsed = time.monotonic() - self.t0
        done = self.n - self.start_n
        rate = done / elapsed if elapsed > 0 else 0.0
        eta = (self.total - self.n) / rate if rate > 0 else float("nan")
        pct = 100.0 * self.n / self.total if self.total else 100.0
        stats = " ".join(f"{k}={_short(v)}" for k, v in self.stats.items())
        eta_s = _fmt_duration(eta) if eta == eta else "?"
        return f"{self.desc}: {self.n}/{self.total} ({pct:.0f}%) {rate:.1f}/s eta {eta_s} {stats}".rstrip()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        else:
            log.info(self.line())


def _short(v) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)
