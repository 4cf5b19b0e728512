"""The step's own error under Snakemake's "Error in rule ..." message.

A step that fails prints one line `error: ...` (steps.core.cli) into its log, which Snakemake
only points to ("check log file(s) for error details"). `EchoStepError`, a logging handler on
Snakemake's logger (installed by workflow/rules/common.smk), reads that line back from the
failed job's log and prints it under Snakemake's message:

    Error in rule instaflow_teacher:
        ...
        log: logs/instaflow/teacher_s0.log (check log file(s) for error details)
    step error (logs/instaflow/teacher_s0.log): missing dataset data/instaflow/digits.npz; ...

A log without such a line (a crash with a traceback, a killed step) gives its last line.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable

TAIL_BYTES = 64 * 1024  # a step's error is at the end of its log


def last_error(path: str | os.PathLike) -> str | None:
    """The last `error: ...` line of a log (its text after `error: `), else its last non-empty
    line; None for a missing or empty log."""
    found = _tail(path)
    return found[1] if found else None


def summary(path: str | os.PathLike) -> str | None:
    """The line printed under Snakemake's message for the job's log `path`."""
    found = _tail(path)
    if found is None:
        return None
    is_error, line = found
    return f"step error ({path}): {line}" if is_error else f"end of the step's log ({path}): {line}"


def _tail(path: str | os.PathLike) -> tuple[bool, str] | None:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - TAIL_BYTES))
            lines = [ln.strip() for ln in f.read().decode("utf-8", "replace").splitlines() if ln.strip()]
    except OSError:
        return None
    for line in reversed(lines):
        if line.startswith("error:"):
            return True, line[len("error:"):].strip()
    return (False, lines[-1]) if lines else None


def log_paths(entries: Iterable[str]) -> list[str]:
    """Log paths from Snakemake's formatted file list (which may append flags such as ' (pipe)')."""
    out = []
    for e in entries or ():
        path = str(e).split(" (", 1)[0].strip()
        if path and os.path.isfile(path):
            out.append(path)
    return out


class EchoStepError(logging.Handler):
    """On a job error record, log the step's own error line from the job's log file(s)."""

    def __init__(self, logger: logging.Logger):
        super().__init__(level=logging.ERROR)
        self.logger = logger

    def emit(self, record: logging.LogRecord) -> None:
        if str(getattr(record, "event", "")) != "job_error":  # snakemake.logging.LogEvent.JOB_ERROR
            return
        for path in log_paths(getattr(record, "log", None) or []):
            line = summary(path)
            if line:
                self.logger.error(line)


def install(logger: logging.Logger | None = None) -> EchoStepError:
    """Attach the handler to Snakemake's logger once (idempotent)."""
    if logger is None:
        from snakemake.logging import logger
    for h in logger.handlers:
        if isinstance(h, EchoStepError):
            return h
    handler = EchoStepError(logger)
    logger.addHandler(handler)
    return handler
