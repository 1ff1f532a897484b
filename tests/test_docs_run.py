"""Docs that run: every SHiFT-QL and shell example in README.md and docs/*.md is executed.

Blocks are the fenced ```sql, ```bash, ```sh and ```console blocks. An HTML comment on the
line directly above a fence changes how its block is checked:

- ``<!-- not-run: REASON -->``: not executed (it needs the internet, another machine, or
  takes minutes); the reason is required and shown in the docs.
- ``<!-- synopsis -->``: usage lines, not commands: every ``shift ...`` line names a real
  (sub)command and each ``--flag`` it shows is one of that command's flags; every
  ``scripts/...`` line names an executable script.
- ``<!-- explain: REASON -->``: a SQL block whose task-aware statements are planned with
  ``EXPLAIN`` (datasets, models, proxies and modalities checked) instead of run, because
  running them takes long; the reason says how long.

The SQL blocks of one doc run in order, in one session, against one local shift: ``shift up``
with one CPU worker on a copy of a state directory where ``shift zoo install`` ran, with a
data root holding the files the docs name (``pets.csv``, ``pets/train``, ...; made here, a few
small images each), and ``pets-train`` and ``pets-val`` registered from it as the README's
first example registers them. Every statement must succeed (a statement without ``WAIT`` is waited
for too); ``USE`` is a client-side switch and only parsed. Shell blocks run with ``bash -e``
in the repository root, ``shift`` on the PATH and ``SHIFT_URL`` naming the doc's shift; a
line that starts a broker in the background (``shift up ... &``) stands for that broker and
is skipped. A failure names the doc file and the line of the example.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from repl.client import BrokerClient
from repl.local_shift import LocalShift
from repl.output import render_result
from shift.ql import nodes as n
from shift.ql import parse_script, to_json

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SHELL = ("bash", "sh", "console")
LANGUAGES = ("sql", *SHELL)
MARKER = re.compile(r"^<!--\s*(not-run|synopsis|explain)\s*(?::\s*(.*?))?\s*-->$")
TASK_AWARE = (n.TaskSelect, n.Rank, n.VecSelect)
BACKGROUND_BROKER = re.compile(r"^\s*(\S*/)?shift up\b[^#]*&\s*(#.*)?$")
NEEDS_BROKER = re.compile(r"\bshift (up|query|zoo|repl)\b|\bcurl\b")
STATEMENT_TIMEOUT_S = 600.0


@dataclass(frozen=True)
class Block:
    """One fenced example: its doc, the line of its first content line, language, marker."""

    doc: Path
    line: int
    language: str
    text: str
    marker: str | None
    reason: str

    @property
    def where(self) -> str:
        """``docs/x.md:12``."""
        return f"{_rel(self.doc)}:{self.line}"


def _rel(doc: Path) -> str:
    """A doc's path relative to the repository (absolute when it lies elsewhere)."""
    return str(doc.relative_to(ROOT)) if doc.is_relative_to(ROOT) else str(doc)


def blocks(doc: Path) -> list[Block]:
    """The sql and shell blocks of ``doc`` in order, with the marker above each fence."""
    lines = doc.read_text(encoding="utf-8").splitlines()
    found: list[Block] = []
    i = 0
    while i < len(lines):
        fence = re.match(r"^```(\w*)\s*$", lines[i])
        if not fence:
            i += 1
            continue
        end = i + 1
        while end < len(lines) and not lines[end].startswith("```"):
            end += 1
        language = fence.group(1)
        if language in LANGUAGES:
            above = MARKER.match(lines[i - 1].strip()) if i else None
            found.append(
                Block(
                    doc,
                    i + 2,
                    language,
                    "\n".join(lines[i + 1 : end]) + "\n",
                    above.group(1) if above else None,
                    (above.group(2) or "") if above else "",
                )
            )
        i = end + 1
    return found


ALL_BLOCKS = [block for doc in DOCS for block in blocks(doc)]
RUN_DOCS = [doc for doc in DOCS if any(b.marker != "not-run" for b in blocks(doc))]


def _images(folder: Path, classes: dict[str, tuple[int, int, int]], per_class: int, seed: int):
    """Small PNGs of ``classes`` (a base colour each, plus seeded noise), one folder each."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    written = []
    for label, colour in classes.items():
        (folder / label).mkdir(parents=True, exist_ok=True)
        for k in range(per_class):
            noise = rng.integers(-40, 40, size=(48, 48, 3))
            pixels = np.clip(np.array(colour) + noise, 0, 255).astype(np.uint8)
            path = folder / label / f"{k}.png"
            Image.fromarray(pixels, "RGB").save(path)
            written.append((path, label))
    return written


def make_data_root(root: Path) -> Path:
    """The files the docs' examples name, under one data root (a user's own data)."""
    breeds = {"beagle": (200, 150, 90), "pug": (60, 50, 40), "siamese": (230, 230, 210)}
    train = _images(root / "pets" / "train", breeds, 4, seed=0)
    _images(root / "pets" / "val", breeds, 2, seed=1)
    rows = ["image,breed", *(f"{p.relative_to(root)},{label}" for p, label in train)]
    (root / "pets.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return root


USER_DATASETS = (
    "REGISTER DATASET \"pets-train\" (reader, path) VALUES ('image_folder', 'pets/train')",
    "REGISTER DATASET \"pets-val\" (reader, path) VALUES ('image_folder', 'pets/val')",
)
"""A user's own datasets that docs other than the README use as registered (the README's
first example registers them with these very statements, which are idempotent)."""


@pytest.fixture(scope="module")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_data_root(tmp_path_factory.mktemp("docs-data"))


@pytest.fixture(scope="module")
def zoo_state(tmp_path_factory: pytest.TempPathFactory, data_root: Path) -> Path:
    """A stopped shift's state directory with the offline zoo installed (measured once)."""
    state = tmp_path_factory.mktemp("docs-zoo") / "state"
    with LocalShift(str(state), 1, settings={"data_roots": str(data_root)}) as shift:
        shift.install_zoo()
        for statement in USER_DATASETS:
            shift.run_query(statement)
    return state


class DocShift:
    """One local shift for one doc, started on first use from a copy of the zoo state."""

    def __init__(self, zoo_state: Path, data_root: Path, scratch: Path) -> None:
        self.zoo_state, self.data_root, self.scratch = zoo_state, data_root, scratch
        self.shift: LocalShift | None = None

    @property
    def url(self) -> str:
        if self.shift is None:
            state = self.scratch / "state"
            shutil.copytree(self.zoo_state, state)
            self.shift = LocalShift(str(state), 1, settings={"data_roots": str(self.data_root)})
            self.shift.__enter__()
        return self.shift.url

    def close(self) -> None:
        if self.shift is not None:
            self.shift.stop()


def _line_of(block: Block, offset: int) -> int:
    return block.line + block.text.count("\n", 0, offset)


def run_sql(block: Block, shift: DocShift, session: str) -> list[str]:
    """Run a SQL block statement by statement; the failures, each with its doc line."""
    failures = []
    script = parse_script(block.text)
    client = BrokerClient(shift.url, timeout_s=STATEMENT_TIMEOUT_S)
    for statement in script.statements:
        start = statement.span[0] if statement.span else 0
        where = f"{_rel(block.doc)}:{_line_of(block, start)}"
        if isinstance(statement, n.Use):
            continue
        if block.marker == "explain" and isinstance(statement, (*TASK_AWARE, n.Finetune)):
            statement = n.Explain(statement)
        text = block.text[slice(*statement.span)] if statement.span else str(statement)
        try:
            queries = client.submit(to_json(statement), session)
            for query in queries:
                final = query
                for state in client.follow(query["id"]):
                    final = state
                if final.get("status") != "succeeded":
                    error = final.get("error") or {}
                    message = error.get("message") if isinstance(error, dict) else error
                    failures.append(f"{where}: {text!r} {final.get('status')}: {message}")
                else:
                    render_result(final.get("result"), "table")
        except Exception as error:  # a refused statement or a broken broker: both a failure
            failures.append(f"{where}: {text!r} raised {type(error).__name__}: {error}")
    return failures


BARE_SHIFT = re.compile(r"^\s*shift\s+[a-z]")
"""A command line that bash would hand to its builtin ``shift`` (it shadows the console
script whatever the PATH), so examples spell the script's path: ``.venv/bin/shift``."""


def run_shell(block: Block, shift: DocShift | None, scratch: Path) -> list[str]:
    """Run a shell block with ``bash -e``; the failure with the doc line of the command."""
    lines, bare = [], []
    for k, line in enumerate(block.text.splitlines()):
        if block.language == "console":
            if not line.startswith("$ "):
                lines.append(":")  # shown output
                continue
            line = line[2:]
        if BARE_SHIFT.match(line):
            bare.append(
                f"{_rel(block.doc)}:{block.line + k}: bash runs its builtin `shift` "
                "for this line; write .venv/bin/shift"
            )
        lines.append(": runner's broker" if BACKGROUND_BROKER.match(line) else line)
    if bare:
        return bare
    script = scratch / f"block-{block.line}.sh"
    script.write_text(
        "set -eo pipefail\ntrap 'echo \"failed at script line $((LINENO - 2))\" >&2' ERR\n"
        + "\n".join(lines)
        + "\n",
        encoding="utf-8",
    )
    env = {
        **os.environ,
        "SHIFT_STATE_DIR": str(scratch / "client-state"),
    }
    if shift is not None and NEEDS_BROKER.search(block.text):
        env["SHIFT_URL"] = shift.url
        env["SHIFT_DATA_ROOTS"] = str(shift.data_root)
    done = subprocess.run(
        ["bash", str(script)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=STATEMENT_TIMEOUT_S,
        check=False,
    )
    if done.returncode == 0:
        return []
    failed = re.search(r"failed at script line (\d+)", done.stderr)
    line = block.line + int(failed.group(1)) - 1 if failed else block.line
    tail = textwrap.indent((done.stdout + done.stderr).strip()[-2000:], "    ")
    return [f"{_rel(block.doc)}:{line}: exit {done.returncode}\n{tail}"]


def synopsis_problems(block: Block) -> list[str]:
    """The lines of a synopsis block that name no command, a missing flag or script."""
    problems = []
    commands: list[tuple[int, list[str], str]] = []
    for k, raw in enumerate(block.text.splitlines()):
        line = raw.split("  #")[0].rstrip()
        words = line.split()
        if not words:
            continue
        if words[0] in ("shift", ".venv/bin/shift"):
            path = []
            for word in words[1:]:
                if not re.fullmatch(r"[a-z][a-z0-9-]*", word):
                    break
                path.append(word)
            commands.append((block.line + k, path, line))
        elif words[0].startswith("scripts/"):
            script = ROOT / words[0]
            if not (script.is_file() and os.access(script, os.X_OK)):
                problems.append(f"{block.where}+{k}: {words[0]} is not an executable script")
        elif commands and raw.startswith(" "):
            number, path, text = commands[-1]
            commands[-1] = (number, path, f"{text} {line}")
        else:
            problems.append(f"{_rel(block.doc)}:{block.line + k}: not a usage line")
    for number, path, text in commands:
        done = subprocess.run(
            [sys.executable, "-m", "shift", *path, "--help"],
            capture_output=True,
            text=True,
            check=False,
        )
        where = f"{_rel(block.doc)}:{number}"
        if done.returncode:
            problems.append(f"{where}: shift {' '.join(path)} --help exits {done.returncode}")
            continue
        known = set(re.findall(r"--[a-z][a-z0-9-]*", done.stdout))
        for flag in sorted(set(re.findall(r"--[a-z][a-z0-9-]*", text)) - known):
            problems.append(f"{where}: shift {' '.join(path)} has no flag {flag}")
    return problems


@pytest.fixture
def doc_shift(zoo_state: Path, data_root: Path, tmp_path: Path) -> Iterator[DocShift]:
    shift = DocShift(zoo_state, data_root, tmp_path)
    yield shift
    shift.close()


@pytest.mark.parametrize("doc", RUN_DOCS, ids=lambda d: str(d.relative_to(ROOT)))
def test_doc_examples_run(doc: Path, doc_shift: DocShift, tmp_path: Path) -> None:
    """Every example of one doc runs, in order, against one shift."""
    failures: list[str] = []
    for block in blocks(doc):
        if block.marker == "not-run":
            continue
        if block.marker == "synopsis":
            failures += synopsis_problems(block)
        elif block.language == "sql":
            failures += run_sql(block, doc_shift, session=f"docs-{doc.stem}")
        else:
            failures += run_shell(block, doc_shift, tmp_path)
    assert not failures, "examples that fail as written:\n" + "\n".join(failures)


@pytest.mark.parametrize("block", ALL_BLOCKS, ids=lambda b: b.where)
def test_every_block_runs_or_says_why_not(block: Block) -> None:
    """A block is run, or its marker says why not (a reason is required)."""
    if block.marker in ("not-run", "explain"):
        assert block.reason, f"{block.where}: a {block.marker} marker needs a reason"
    if block.marker in ("synopsis",):
        assert block.language in SHELL, f"{block.where}: a synopsis is a shell block"
    if block.marker == "explain":
        assert block.language == "sql", f"{block.where}: only a SQL block can be explained"


def test_collector_sees_markers_and_lines(tmp_path: Path) -> None:
    doc = tmp_path / "x.md"
    doc.write_text(
        "# x\n\n```sql\nPRINT *;\n```\n\n<!-- not-run: needs internet (hub download) -->\n"
        "```bash\ncurl https://example.org\n```\n```python\nx = 1\n```\n<!-- synopsis -->\n"
        "```sh\nshift up [--workers N]\n```\n",
        encoding="utf-8",
    )
    found = [(b.line, b.language, b.marker, b.reason, b.text) for b in blocks(doc)]
    assert found == [
        (4, "sql", None, "", "PRINT *;\n"),
        (9, "bash", "not-run", "needs internet (hub download)", "curl https://example.org\n"),
        (16, "sh", "synopsis", "", "shift up [--workers N]\n"),
    ]


def test_synopsis_check_catches_a_made_up_flag(tmp_path: Path) -> None:
    doc = tmp_path / "x.md"
    doc.write_text(
        "```bash\nshift parse [--render] [--no-such-flag]\nshift nosuchcommand\n"
        "scripts/no_such_script\n```\n",
        encoding="utf-8",
    )
    (block,) = blocks(doc)
    problems = synopsis_problems(block)
    assert any("has no flag --no-such-flag" in p for p in problems)
    assert not any("--render" in p for p in problems)
    assert any("shift nosuchcommand --help exits 2" in p for p in problems)
    assert any("scripts/no_such_script is not an executable script" in p for p in problems)


def test_shell_failure_names_the_doc_line(tmp_path: Path) -> None:
    doc = tmp_path / "x.md"
    doc.write_text(
        "text\n```bash\n.venv/bin/shift parse 'SELECT * FROM models'\n"
        ".venv/bin/shift parse 'SELECT FROM'\n"
        "echo unreachable\n```\n",
        encoding="utf-8",
    )
    (block,) = blocks(doc)
    (failure,) = run_shell(block, None, tmp_path)
    assert failure.startswith(f"{doc}:4: exit 2"), failure
    doc.write_text("```bash\nshift repl\n```\n", encoding="utf-8")
    (block,) = blocks(doc)
    (failure,) = run_shell(block, None, tmp_path)
    assert failure == f"{doc}:2: bash runs its builtin `shift` for this line; write .venv/bin/shift"


def test_sources_page_is_generated_from_the_registries() -> None:
    """docs/sources.md's reference section is what ``shift sources --markdown`` prints."""
    from workers.sources_command import BEGIN, END, markdown

    page = (ROOT / "docs" / "sources.md").read_text(encoding="utf-8")
    section = BEGIN + page.split(BEGIN, 1)[1].split(END, 1)[0] + END + "\n"
    assert section == markdown(), "docs/sources.md is out of date: run scripts/gen_reference"


def _read_names(function: object, pattern: str) -> set[str]:
    import ast
    import inspect

    module = inspect.getmodule(function)
    tree = ast.parse(inspect.getsource(module))  # type: ignore[arg-type]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and node.args:
            text = ast.unparse(node)
            match = re.match(pattern, text)
            if match:
                found.add(match.group(1))
    return found


def test_every_parameter_read_is_declared_and_every_declared_one_read() -> None:
    """The reference cannot drift: a reader's ``param(params, "x")`` and a family's
    ``loader.get("x")`` each have a declaration, and each declaration is read."""
    from workers.models import FAMILIES
    from workers.readers import READERS

    for family in FAMILIES.values():
        read = _read_names(family.load, r"(?:spec\.)?loader\.get\('(\w+)'")
        read -= {"weights"}  # read by load_model for every family (fine-tuned weights)
        declared = {p.name for p in family.params}
        assert read == declared, f"family {family.name}: read {read}, declared {declared}"
    for kind in READERS.values():
        import inspect

        source = inspect.getsource(kind.read)
        module = inspect.getmodule(kind.read)
        shared = sum(1 for k in READERS.values() if inspect.getmodule(k.read) is module)
        read = (
            set(re.findall(r"param\(params, \"(\w+)\"", source))
            if shared > 1
            else _read_names(kind.read, r"param\(params, '(\w+)'")
        )
        declared = {p.name for p in kind.params}
        assert read == declared, f"reader {kind.name}: read {read}, declared {declared}"


def test_shift_sources_prints_every_reader_and_source(capsys: pytest.CaptureFixture[str]) -> None:
    import argparse

    from shift.cli import Command
    from shift.registration import MODEL_SOURCES
    from workers.readers import READERS

    module = Command("sources", "workers.sources_command").load()
    parser = argparse.ArgumentParser()
    module.configure(parser)
    assert module.run(parser.parse_args([])) == 0
    out = capsys.readouterr().out
    for name in (*READERS, *MODEL_SOURCES):
        assert re.search(rf"\b{re.escape(name)}\b", out), name
    assert "a relative path resolves against each data root" in out
