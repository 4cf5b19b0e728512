"""Scaffold a new paper: every file a paper needs, wired to steps.core, passing lint, the
registry/params/DVC checks and its own smoke DAG at once.

    python -m steps.core.new_paper <slug> --family "<family>" --title "<title>" \
        [--authors "..."] [--venue "..."] [--arxiv 2401.00001] [--no-dvc]

writes, from the templates in steps/core/scaffold/:

    workflow/rules/<slug>.smk                 the DAG: data → train (per seed) → evaluate → report
    steps/<slug>/{__init__,data,model,train,evaluate,figures}.py
    params/<slug>/{base,smoke,mini,full,checks,claims}.yaml
    docs/papers/<slug>.md, tests/test_<slug>.py

and registers the paper: its slug in workflow/papers.yaml, a row in README.md's table, its DVC
stage in dvc.yaml (`python -m steps.core.dvc_sync generate`; --no-dvc skips it). The skeleton is
a seeded toy task; its report and README row say PLACEHOLDER, and its one claim reads a metric
the skeleton does not write, so no claim can hold until the paper's own metrics exist. Nothing is
written if any of these files already exists.
"""

from __future__ import annotations

import argparse
import re
import string
import sys
from pathlib import Path

from steps.core.errors import ConfigError

SLUG = re.compile(r"^[a-z][a-z0-9_]{1,39}$")
TEMPLATES = Path(__file__).with_name("scaffold")
# template → path in the checkout ({slug} filled in)
FILES = {
    "rules.smk.tmpl": "workflow/rules/{slug}.smk",
    "init.py.tmpl": "steps/{slug}/__init__.py",
    "data.py.tmpl": "steps/{slug}/data.py",
    "model.py.tmpl": "steps/{slug}/model.py",
    "train.py.tmpl": "steps/{slug}/train.py",
    "evaluate.py.tmpl": "steps/{slug}/evaluate.py",
    "figures.py.tmpl": "steps/{slug}/figures.py",
    "base.yaml.tmpl": "params/{slug}/base.yaml",
    "smoke.yaml.tmpl": "params/{slug}/smoke.yaml",
    "mini.yaml.tmpl": "params/{slug}/mini.yaml",
    "full.yaml.tmpl": "params/{slug}/full.yaml",
    "checks.yaml.tmpl": "params/{slug}/checks.yaml",
    "claims.yaml.tmpl": "params/{slug}/claims.yaml",
    "doc.md.tmpl": "docs/papers/{slug}.md",
    "test.py.tmpl": "tests/test_{slug}.py",
}
README_TABLE_HEAD = "| paper | what is reproduced | mini data |"


def _registry(root: Path) -> list[str]:
    import yaml

    return list(yaml.safe_load((root / "workflow" / "papers.yaml").read_text())["papers"])


def check(root: Path, slug: str) -> None:
    """Refuse a bad or taken slug before anything is written."""
    if not SLUG.match(slug):
        raise ConfigError(f"slug {slug!r}: use 2-40 characters, lower-case letters, digits and _, starting "
                          f"with a letter (the paper's ID in papers/INDEX.md, e.g. star_adore)")
    if slug in _registry(root):
        raise ConfigError(f"{slug} is already in workflow/papers.yaml")
    taken = [p for p in FILES.values() if (root / p.format(slug=slug)).exists()]
    if taken:
        raise ConfigError(f"{slug}: {', '.join(p.format(slug=slug) for p in taken)} already exist(s); nothing written")


def render(slug: str, family: str, title: str, authors: str, venue: str, arxiv: str) -> dict[str, str]:
    """{relative path: text} of every scaffold file."""
    fields = {"slug": slug, "PFX": slug.upper(), "family": family, "title": title.replace('"', "'"),
              "authors": authors.replace('"', "'"), "venue": venue.replace('"', "'"), "arxiv": arxiv}
    return {dest.format(slug=slug): string.Template((TEMPLATES / tmpl).read_text()).substitute(fields)
            for tmpl, dest in FILES.items()}


def add_to_registry(text: str, slug: str) -> str:
    """workflow/papers.yaml with `slug` appended to its list, comments kept."""
    lines = text.rstrip("\n").split("\n")
    last = max(i for i, line in enumerate(lines) if line.lstrip().startswith("- "))
    indent = lines[last][: len(lines[last]) - len(lines[last].lstrip())]
    lines.insert(last + 1, f"{indent}- {slug}")
    return "\n".join(lines) + "\n"


def add_readme_row(text: str, slug: str, family: str, title: str) -> str:
    """README.md with a row for `slug` at the end of the papers table."""
    lines = text.split("\n")
    if README_TABLE_HEAD not in lines:
        raise ConfigError(f"README.md has no papers table (a line '{README_TABLE_HEAD}')")
    i = lines.index(README_TABLE_HEAD) + 2
    while i < len(lines) and lines[i].startswith("|"):
        i += 1
    lines.insert(i, f"| [{slug}](docs/papers/{slug}.md) | PLACEHOLDER ({family}): {title} — the scaffold's skeleton, "
                    f"nothing reproduced yet | a seeded toy task (placeholder) |")
    return "\n".join(lines)


def create(root: Path, slug: str, family: str, title: str, authors: str = "unknown (fill in)",
           venue: str = "unknown (fill in)", arxiv: str = "unknown", dvc: bool = True) -> list[str]:
    """Write the scaffold for `slug` into the checkout at `root`; returns the files written."""
    from steps.core.io import write_text

    check(root, slug)
    files = render(slug, family, title, authors, venue, arxiv)
    for rel, text in files.items():
        write_text(root / rel, text)
    reg = root / "workflow" / "papers.yaml"
    write_text(reg, add_to_registry(reg.read_text(), slug))
    readme = root / "README.md"
    write_text(readme, add_readme_row(readme.read_text(), slug, family, title))
    written = [*files, "workflow/papers.yaml", "README.md"]
    if dvc:
        import subprocess

        subprocess.run([sys.executable, "-m", "steps.core.dvc_sync", "generate"], cwd=root, check=True)
        written.append("dvc.yaml")
    return written


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m steps.core.new_paper", description=__doc__.split("\n\n")[0])
    ap.add_argument("slug", help="the paper's ID (papers/INDEX.md), e.g. star_adore")
    ap.add_argument("--family", required=True, help='e.g. "retrieval and RAG"')
    ap.add_argument("--title", required=True)
    ap.add_argument("--authors", default="unknown (fill in)")
    ap.add_argument("--venue", default="unknown (fill in)")
    ap.add_argument("--arxiv", default="unknown")
    ap.add_argument("--no-dvc", action="store_true", help="do not regenerate dvc.yaml (run dvc_sync generate later)")
    args = ap.parse_args(argv)
    from steps.core.config import repo_root

    try:
        written = create(repo_root(), args.slug, args.family, args.title, args.authors, args.venue, args.arxiv,
                         dvc=not args.no_dvc)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"{args.slug}: wrote {len(written)} files:\n  " + "\n  ".join(written))
    print(f"next: snakemake -c2 {args.slug} --config scale=smoke   # the skeleton runs end to end\n"
          f"      then replace the skeleton with the paper (docs/papers/{args.slug}.md says what to fill in)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
