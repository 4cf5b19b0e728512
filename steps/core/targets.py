"""An unknown target named on the command line gets the list of papers, not Snakemake's bare
MissingRuleException.

Snakemake sets its targets only after the Snakefile is read, so the Snakefile reads them from
the command line with Snakemake's own argument parser (`from_argv`). A target without a path
separator or dot that is neither a rule nor an existing file is refused:

    error: unknown target 'instaflw' (did you mean instaflow?); papers: instaflow, ...; other
    rules: all, index
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Iterable, Sequence


def from_argv(argv: Sequence[str]) -> list[str]:
    """The positional targets of a `snakemake ...` command line; [] when it is not one (the API,
    a job started by an executor) or cannot be parsed."""
    if not argv or os.path.basename(argv[0]) not in ("snakemake", "__main__.py"):
        return []
    try:
        from snakemake.cli import get_argument_parser

        args, _ = get_argument_parser().parse_known_args(list(argv[1:]))
    except (SystemExit, Exception):  # an unusual command line: leave it to Snakemake
        return []
    return [str(t) for t in (getattr(args, "targets", None) or [])]


def unknown(targets: Iterable[str], rules: Iterable[str]) -> list[str]:
    """Targets that look like rule names but are neither a rule nor a file."""
    rules = set(rules)
    return [t for t in targets if "/" not in t and "." not in t and t not in rules and not os.path.exists(t)]


def check_argv(argv: Sequence[str], rules: Iterable[str]) -> list[str]:
    """The unknown targets of a command line. Snakemake's argument parser (a quarter of a
    second to build) is used only when some word of the line could be one."""
    rules = set(rules)
    words = [w for w in argv[1:] if not w.startswith("-") and "=" not in w and not w.isdigit()]
    if not unknown(words, rules):
        return []
    return unknown(from_argv(argv), rules)


def message(target: str, papers: Sequence[str], rules: Iterable[str]) -> str:
    close = difflib.get_close_matches(target, [*papers, *rules], n=1)
    hint = f" (did you mean {close[0]}?)" if close else ""
    others = sorted(r for r in rules if r not in papers and "_" not in r)
    return (f"unknown target '{target}'{hint}; papers: {', '.join(papers)}; other rules: "
            f"{', '.join(others)}; or give a file, e.g. results/{papers[0]}/report.md")
