"""Claims registered honestly, checked against git: each claim's `registered.commit` is the
commit that first wrote it, and every later change of its check (a threshold included) has an
entry in its `history` (`was:` the check before). A claim whose check changes in git without a
new history entry fails here. Needs the repository's history (skipped in a shallow clone)."""

from __future__ import annotations

import subprocess

import pytest
import yaml

from tests.conftest import ROOT

PAPERS = yaml.safe_load((ROOT / "workflow" / "papers.yaml").read_text())["papers"]
# every paper's claims, and the claims of its studies (params/<paper>/<study>_claims.yaml)
CLAIMS_FILES = [f"params/{p}/claims.yaml" for p in PAPERS] + sorted(
    str(f.relative_to(ROOT)) for p in PAPERS for f in (ROOT / "params" / p).glob("*_claims.yaml"))


def _git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=True).stdout


def _has_history() -> bool:
    try:
        return _git("rev-parse", "--is-shallow-repository").strip() == "false" and bool(_git("rev-parse", "HEAD").strip())
    except (subprocess.CalledProcessError, OSError):
        return False


def versions(rel: str) -> list[tuple[str, dict]]:
    """(commit, parsed claims file) of every commit that touched `rel`, oldest first, then the
    working tree's version as ("worktree", ...) when it differs from HEAD's."""
    out = []
    for commit in _git("log", "--format=%H", "--reverse", "--", rel).split():
        try:
            out.append((commit, yaml.safe_load(_git("show", f"{commit}:{rel}")) or {}))
        except subprocess.CalledProcessError:  # deleted in that commit
            continue
    current = yaml.safe_load((ROOT / rel).read_text())
    if not out or out[-1][1] != current:
        out.append(("worktree", current))
    return out


def claim_trail(vers, claim_id: str) -> tuple[str | None, list[str]]:
    """(first commit with the claim, its successive distinct checks since)."""
    first, checks = None, []
    for commit, doc in vers:
        found = next((c for c in doc.get("claims") or [] if c.get("id") == claim_id), None)
        if found is None:
            continue
        first = first or commit
        if not checks or checks[-1] != found["check"]:
            checks.append(found["check"])
    return first, checks


pytestmark = pytest.mark.skipif(not _has_history(), reason="needs the git history (a shallow clone has none)")


@pytest.mark.parametrize("rel", CLAIMS_FILES)
def test_every_claim_is_registered_with_its_commit_and_its_changes(rel):
    vers = versions(rel)
    problems = []
    for c in vers[-1][1]["claims"]:
        reg = c.get("registered")
        if not reg:
            problems.append(f"{c['id']}: no `registered:` (when it was written relative to the runs, and the commit)")
            continue
        first, checks = claim_trail(vers, c["id"])
        if first == "worktree":
            if reg["commit"] != "pending":
                problems.append(f"{c['id']}: not committed yet: write `commit: pending`, then its commit once made")
        elif not first.startswith(reg["commit"]):
            problems.append(f"{c['id']}: first written in commit {first[:12]}, registered says {reg['commit']}")
        was = [h["was"] for h in c.get("history") or [] if h.get("was")]
        if checks[:-1] != was:
            problems.append(f"{c['id']}: its check changed in git {len(checks) - 1}× ({checks[:-1]} → {checks[-1]!r}) "
                            f"but its history records {len(was)} change(s) ({was}): add a `history:` entry "
                            f"{{date, was: <the check before>, reason}} for each change")
    assert not problems, f"{rel}:\n  " + "\n  ".join(problems)
