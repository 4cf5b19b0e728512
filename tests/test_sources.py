"""steps.core.sources: a rule's code inputs are its module and all it imports from steps."""

from __future__ import annotations

from steps.core.sources import sources


def test_transitive_imports_are_found_without_importing(tmp_path):
    pkg = tmp_path / "steps"
    (pkg / "a").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "a" / "__init__.py").write_text("")
    (pkg / "a" / "main.py").write_text("import os\nfrom steps.a import helper\nfrom . import rel\n")
    (pkg / "a" / "helper.py").write_text("def f():\n    from steps.a.deep import x\n    return x\n")
    (pkg / "a" / "rel.py").write_text("raise RuntimeError('never imported')\n")
    (pkg / "a" / "deep.py").write_text("x = 1\n")
    (pkg / "a" / "unused.py").write_text("")
    got = sources("steps.a.main", root=tmp_path)
    assert got == sorted(f"steps/{p}" for p in ["__init__.py", "a/__init__.py", "a/main.py", "a/helper.py", "a/rel.py", "a/deep.py"])


def test_a_real_step_depends_on_the_shared_code_it_uses():
    got = sources("steps.instaflow.reflow")
    assert "steps/nn/velocity.py" in got and "steps/core/checkpoint.py" in got and "steps/instaflow/pairs.py" in got
    assert "steps/instaflow/evaluate.py" not in got and "steps/core/report.py" not in got
