"""README.md's commands, run, so that the README cannot drift from the code.

Every command in README.md's ```bash and ```console blocks is either run here, in a throw-away
copy of the repository (RUN: Snakemake as a dry run; the DVC commands after a smoke run), or
listed in NOT_RUN with the reason it is not (a cluster, GPUs, minutes at mini, a placeholder).
A command that is in neither, or an entry that names no command of the README, fails the first
test. A ```console block also states what its commands print: those lines must be in the output
(`...` alone on a line skips lines; inside a line, it stands for any text). A README comment
`# N jobs` on a dry run must match Snakemake's job count.

    python -m pytest tests/test_readme.py -q -n0
"""

from __future__ import annotations

import dataclasses
import os
import re
import subprocess
from pathlib import Path

import pytest

from tests.conftest import PY, ROOT, copy_repo

GIT_ENV = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}
SHELL_BLOCKS = {"bash", "sh", "shell"}
# Paths outside the checkout that README commands write to, and where the copies use instead.
SUBS = {"/tmp/plots": "{tmp}/plots", "/mnt/shared/paperzoo-dvc": "{tmp}/remote-readme"}


@dataclasses.dataclass(frozen=True)
class Run:
    """How a README command is run. `where`: "fresh" is a copy with no outputs and dvc.yaml at
    mini, as a clone has it; "smoke" is a copy whose dvc.yaml has instaflow, lrd_balmer and
    slimflow at smoke, where `dvc repro` made instaflow and lrd_balmer, pushed to a DVC remote
    `storage` (so that metrics and columns collide as they do across all papers)."""

    where: str
    dry: bool = False  # snakemake: add -n
    fails: bool = False  # the command is shown failing (an error message)
    shows: tuple[str, ...] = ()  # text its output must contain
    max_width: int | None = None  # the widest line it may print
    unchanged: tuple[str, ...] = ()  # files it must leave as they are


RUN = {
    # Running, Overriding parameters, Full scale, Training on many GPUs
    "snakemake -c all instaflow": Run("fresh", dry=True),
    "snakemake -c all results/instaflow/fid.json": Run("fresh", dry=True),
    "snakemake -c all": Run("fresh", dry=True),
    "snakemake -c all --config papers=instaflow,monolith": Run("fresh", dry=True),
    "snakemake -c all instaflow --config scale=smoke": Run("fresh", dry=True),
    "snakemake -n results/instaflow/fid.json --config scale=full": Run("fresh"),
    'snakemake -c all instaflow --config instaflow="reflow.steps=2000 distill.lr=0.0001"': Run("fresh", dry=True),
    'snakemake -c all instaflow --config scale=smoke instaflow="seeds=[0,1]"': Run("fresh", dry=True),
    'snakemake -n instaflow --config instaflow="reflow.stepz=1"': Run("fresh", fails=True),
    'snakemake -n instaflow --config instaflow="teacher.steps=0"': Run("fresh", fails=True),
    "snakemake -n instaflw": Run("fresh", fails=True),
    'snakemake -c2 instaflow --config scale=smoke instaflow="resources.teacher.gpu=2"': Run("fresh", dry=True),
    # Running on your cluster: the profile plans without a cluster
    "snakemake --profile slurm -n results/instaflow/fid.json": Run("fresh"),
    "snakemake --profile slurm results/instaflow/fid.json": Run("fresh", dry=True),
    "snakemake --profile slurm instaflow --config scale=mini": Run("fresh", dry=True),
    "snakemake --profile slurm instaflow --set-resources instaflow_reflow:runtime=4320": Run("fresh", dry=True),
    "snakemake --profile workflow/profiles/slurm-ci instaflow --config scale=smoke": Run("fresh", dry=True),
    # DVC on a fresh clone
    "dvc status": Run("fresh"),
    "dvc remote add -d storage /mnt/shared/paperzoo-dvc": Run("fresh"),
    'git add .dvc/config && git commit -m "DVC remote"': Run("fresh"),
    # DVC after a run
    "dvc repro instaflow": Run("smoke", shows=("Data and pipelines are up to date",)),
    "python -m steps.core.dvc_sync generate": Run("smoke", unchanged=("dvc.yaml",)),
    "python -m steps.core.dvc_sync generate --scale smoke": Run("smoke", unchanged=("dvc.yaml",)),
    "python -m steps.core.dvc_sync sync --pull -- -r storage instaflow": Run("smoke", shows=("Snakemake trusts the outputs of instaflow",)),
    "dvc metrics show": Run("smoke", shows=("results/instaflow/summary.json", "results/lrd_balmer/summary.json"),
                            max_width=200),
    "dvc metrics show results/instaflow/fid.json": Run("smoke", shows=("values.one_step.instaflow_long.mean",)),
    "dvc metrics diff HEAD~1": Run("smoke"),
    "dvc params diff HEAD~1": Run("smoke"),
    "dvc plots show -o /tmp/plots": Run("smoke"),
    "dvc exp show --drop '.*' --keep 'Experiment|results/instaflow/summary.json:headline|params/instaflow/base.yaml:distill.lr'":
        Run("smoke", shows=("results/instaflow/summary.json:headline", "params/instaflow/base.yaml:distill.lr")),
    "python -m steps.core.benchmark --summarize .": Run("smoke", shows=("## instaflow, smoke scale", "## lrd_balmer, smoke scale")),
}

NOT_RUN = {
    "bash scripts/reproduce.sh instaflow": "sets up .venv, then runs InstaFlow at mini: minutes (its smoke DAG: tests/test_workflow.py)",
    "bash scripts/test.sh": "runs the whole test suite, this file included (CI runs it: .ci/run)",
    "PYTEST_WORKERS=0 bash scripts/test.sh": "runs the whole test suite, this file included",
    "python -m steps.instaflow.teacher scale=mini seed=0 teacher.steps=500 io.digits=data/instaflow/digits.npz "
    "io.captions=data/instaflow/caption_emb.npz io.out=/tmp/rf1.pt":
        "trains InstaFlow's teacher for 500 steps at mini (minutes) on the data a run made",
    "sudo bash scripts/local-slurm/start.sh": "needs root; installs and starts a SLURM cluster (tests/test_slurm.py, marker slurm)",
    "sudo bash scripts/local-slurm/stop.sh": "needs root and the local SLURM cluster",
    "python -m steps.core.bench_distributed": "four timed trainings of 1 and 2 processes: minutes on 2 cores "
                                             "(the machinery: tests/test_distributed.py)",
    "python -m steps.core.bench_distributed --worlds 1,2,4,8 --batches 256,1024 --hidden 4096 --depth 8": "needs 8 GPUs",
    "dvc repro": "runs every paper at mini (up to 10 min each); `dvc repro --dry` cannot stand in: it stops at the "
                 "first stage that reads another paper's outputs (nitrofusion: data/instaflow), which a dry run does not make",
    "snakemake -c all && python -m steps.core.dvc_sync commit": "runs every paper at mini (up to 10 min each)",
    "dvc remote modify --local storage access_key_id ...": "`...` stands for your credential",
    "python -m steps.core.dvc_sync sync --pull": "pulls every stage, and the smoke copy here has a stage that never ran "
                                                 "(its pull of one paper is run; after a complete `dvc repro`: tests/test_dvc.py)",
    'dvc exp run --temp -S "$(python -m steps.core.dvc_sync set instaflow distill.lr=0.001)"':
        "reruns InstaFlow from scratch at mini: minutes (at smoke: tests/test_dvc.py)",
    "dvc exp apply <name>": "`<name>` stands for an experiment",
    "dvc exp remove <name> ...": "`<name>` stands for experiments",
    "dvc gc --workspace": "deletes from the DVC cache, after asking",
    "dvc gc --all-branches --all-tags": "deletes from the DVC cache, after asking",
    "dvc gc --all-branches --all-tags --cloud -r storage": "deletes from a shared remote, after asking",
    "python -m steps.core.benchmark instaflow --scale mini --cores 2": "runs InstaFlow at mini from scratch: minutes "
                                                                      "(its `--summarize .` is run here)",
    'pip install -e ".[bench-official]"': "installs an optional package from PyPI into the environment",
    "pip install --no-deps --target /opt/oto2 only_train_once==2.0.16 onnx protobuf ml_dtypes graphviz":
        "downloads from PyPI into a folder outside the checkout",
    "python -m steps.core.bench_official --official otov2=/opt/oto2 --official teddy=/path/to/TEDDY":
        "needs the official packages and a TEDDY checkout (a placeholder path); minutes of timed runs "
        "(the harness and every paper's cases without them: tests/test_bench_official.py)",
    "python -m steps.core.bench_official monolith fast_sparse_convnets --repeat 21":
        "timed runs, a minute on 2 cores (the harness and both papers' cases: tests/test_bench_official.py)",
    "python -m steps.core.bench_parse": "scaffolds 31 placeholder papers and times dry runs: a minute or more "
                                        "(its machinery, on one placeholder: tests/test_bench_parse.py)",
    "python -m steps.core.bench_parse --smoke": "runs the whole smoke of 46 papers: minutes (tests/test_bench_parse.py)",
    "bash scripts/gpu_check.sh": "needs a CUDA GPU (its --device cpu --tiny mode: tests/test_gpu_check.py)",
    "bash scripts/gpu_check.sh --quick": "needs a CUDA GPU (its --device cpu --tiny mode: tests/test_gpu_check.py)",
    'python -m steps.core.new_paper star_adore --family "retrieval and RAG" --title "Optimizing Dense Retrieval '
    'Model Training with Hard Negatives" --arxiv 2104.08051':
        "adds a paper to the checkout (the same command on another slug, then its tests: tests/test_new_paper.py)",
    "snakemake -c2 star_adore --config scale=smoke": "needs the paper the command above adds (tests/test_new_paper.py "
                                                      "runs a scaffolded paper's smoke DAG)",
}


# ---------------------------------------------------------------- the README's commands


@dataclasses.dataclass
class Command:
    text: str  # whitespace collapsed: the key of RUN and NOT_RUN
    comments: list[str] = dataclasses.field(default_factory=list)
    expected: list[str] | None = None  # a console block's output lines


def split_comment(line: str) -> tuple[str, str]:
    """(command, comment) of a shell line: the comment starts at a `#` after whitespace, outside
    quotes."""
    quote = None
    for i, ch in enumerate(line):
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i].strip(), line[i + 1:].strip()
    return line.strip(), ""


def logical_lines(body: str) -> list[str]:
    """A block's lines with backslash continuations joined."""
    out, cur = [], ""
    for line in body.splitlines():
        if line.rstrip().endswith("\\"):
            cur += line.rstrip()[:-1] + " "
        else:
            out.append(cur + line)
            cur = ""
    return out + ([cur] if cur else [])


def readme_commands(text: str) -> list[Command]:
    """Every command of the README's shell and console blocks, in order, once each."""
    found: dict[str, Command] = {}

    def add(code: str, comment: str = "") -> Command:
        key = " ".join(code.split())
        cmd = found.setdefault(key, Command(key))
        if comment:
            cmd.comments.append(comment)
        return cmd

    for m in re.finditer(r"^```(\w*)\n(.*?)^```", text, re.S | re.M):
        lang, body = m.group(1), m.group(2)
        if lang in SHELL_BLOCKS:
            for line in logical_lines(body):
                code, comment = split_comment(line)
                if code:
                    add(code, comment)
        elif lang == "console":
            current = None
            for line in logical_lines(body):
                if line.startswith("$ "):
                    current = add(*split_comment(line[2:]))
                    current.expected = current.expected or []
                elif current is not None:
                    current.expected.append(line)
    return list(found.values())


def _norm(line: str) -> str:
    return " ".join(line.split())


def shows(expected: list[str], output: str) -> bool:
    """Whether `output` has the `expected` lines: each run of them between `...` lines appears
    as consecutive lines, the runs in order; `...` inside a line matches any text; whitespace
    is compared collapsed."""
    got = [_norm(line) for line in output.splitlines() if line.strip()]
    runs: list[list[re.Pattern]] = [[]]
    for line in expected:
        if _norm(line) == "...":
            runs.append([])
        elif _norm(line):
            runs[-1].append(re.compile(".*".join(re.escape(part) for part in _norm(line).split("..."))))
    pos = 0
    for run in filter(None, runs):
        start = next((s for s in range(pos, len(got) - len(run) + 1)
                      if all(p.fullmatch(got[s + i]) for i, p in enumerate(run))), None)
        if start is None:
            return False
        pos = start + len(run)
    return True


COMMANDS = readme_commands((ROOT / "README.md").read_text())
BY_TEXT = {c.text: c for c in COMMANDS}


def test_every_readme_command_is_run_or_listed():
    texts = list(BY_TEXT)
    unlisted = [t for t in texts if t not in RUN and t not in NOT_RUN]
    assert not unlisted, "README.md commands neither run nor listed in NOT_RUN (tests/test_readme.py):\n" + "\n".join(unlisted)
    stale = [t for t in [*RUN, *NOT_RUN] if t not in BY_TEXT]
    assert not stale, "entries of tests/test_readme.py that README.md no longer has:\n" + "\n".join(stale)
    assert not set(RUN) & set(NOT_RUN)
    stated = [c.text for c in COMMANDS if c.expected is not None and c.text in NOT_RUN]
    assert not stated, f"a console block states the output of commands that are not run: {stated}"


def test_extraction_and_matching():
    text = "```bash\nsnakemake -c all a   # one # two\npython -m x \\\n    y=1  # z\n   # only a comment\n```\n" \
           "```console\n$ dvc status\nx:\n    changed\n...\nend\n```\n```\nnot a command\n```\n"
    cmds = readme_commands(text)
    assert [c.text for c in cmds] == ["snakemake -c all a", "python -m x y=1", "dvc status"]
    assert cmds[0].comments == ["one # two"] and cmds[2].expected == ["x:", "    changed", "...", "end"]
    assert split_comment("echo 'a # b' \"#\"  # c") == ("echo 'a # b' \"#\"", "c")
    out = "banner\nx:\n\tchanged\nskipped\nend\n"
    assert shows(cmds[2].expected, out)
    assert not shows(["x:", "end"], out)  # not consecutive
    assert shows(["error: papers: a, ..."], "error: papers: a, b, c")
    assert not shows(["end", "...", "x:"], out)  # out of order


# ---------------------------------------------------------------- the copies


def env(work: Path) -> dict:
    # `python`, `snakemake` and `dvc` are this interpreter's, as in an activated virtual environment
    path = os.pathsep.join([str(Path(PY).parent), os.environ.get("PATH", "")])
    return {**os.environ, **GIT_ENV, "PATH": path, "PAPERZOO_ROOT": str(work), "DVC_NO_ANALYTICS": "1"}


def sh(work: Path, command: str, timeout: int = 240) -> subprocess.CompletedProcess:
    return subprocess.run(["timeout", "-s", "INT", "-k", "10", str(timeout), "bash", "-c", command], cwd=work,
                          env=env(work), capture_output=True, text=True, stdin=subprocess.DEVNULL)


def must(work: Path, command: str, timeout: int = 240) -> None:
    res = sh(work, command, timeout)
    assert res.returncode == 0, f"{command} failed ({res.returncode}):\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}"


@pytest.fixture(scope="module")
def copies(tmp_path_factory) -> dict[str, Path]:
    """The copies RUN names (Run.where); the smoke one is made on first use."""
    base = tmp_path_factory.mktemp("readme")
    return {"tmp": base, "fresh": copy_repo(base / "fresh")}


def smoke_copy(copies: dict[str, Path]) -> Path:
    if "smoke" not in copies:
        work = copy_repo(copies["tmp"] / "smoke")
        # two papers ran (every paper's summary.json shares its keys), and slimflow's params
        # share `distill.lr` with instaflow's: DVC's columns are named as across all papers
        (work / "workflow" / "papers.yaml").write_text("papers:\n  - instaflow\n  - lrd_balmer\n  - slimflow\n")
        must(work, "python -m steps.core.dvc_sync generate --scale smoke && git add -A && git commit -qm smoke")
        must(work, "dvc repro instaflow lrd_balmer", timeout=400)
        must(work, f"dvc remote add -d storage {copies['tmp'] / 'remote'} && dvc push -q && git add -A && git commit -qm run")
        copies["smoke"] = work
    return copies["smoke"]


def dry(command: str) -> str:
    """The command as a Snakemake dry run (-n right after `snakemake`: --config takes the rest)."""
    assert command.startswith("snakemake "), command
    return command if " -n " in f" {command} " else "snakemake -n " + command.removeprefix("snakemake ")


@pytest.mark.timeout(900)
@pytest.mark.parametrize("text", [c.text for c in COMMANDS if c.text in RUN], ids=lambda t: t[:60])
def test_readme_command_runs(text, copies):
    how, cmd = RUN[text], BY_TEXT[text]
    work = smoke_copy(copies) if how.where == "smoke" else copies[how.where]
    command = dry(text) if how.dry else text
    for old, new in SUBS.items():
        command = command.replace(old, new.format(tmp=copies["tmp"]))
    before = {f: (work / f).read_bytes() for f in how.unchanged}
    res = sh(work, command)
    out = res.stdout + res.stderr
    assert (res.returncode != 0) == how.fails, f"{command} exited {res.returncode}:\n{out[-3000:]}"
    if cmd.expected is not None:
        assert shows(cmd.expected, out), f"README.md says `{text}` prints\n" + "\n".join(cmd.expected) + f"\nbut it printed\n{out[-4000:]}"
    for comment in cmd.comments:
        for n in re.findall(r"\b(\d+) jobs\b", comment):
            assert re.search(rf"^total\s+{n}\s*$", out, re.M), f"README.md says {n} jobs for `{text}`:\n{out[-3000:]}"
    for s in how.shows:
        assert s in out, f"`{text}` did not print {s!r}:\n{out[-3000:]}"
    if how.max_width:
        assert max(map(len, out.splitlines())) <= how.max_width, f"`{text}` prints lines over {how.max_width} characters"
    for f, content in before.items():
        assert (work / f).read_bytes() == content, f"`{text}` changed {f}"
