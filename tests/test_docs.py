"""The docs are tested: every setting documented, every example parses, shown output is real."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from shift.ql import parse_script
from shift.settings import SETTINGS

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
LANGUAGE = (ROOT / "docs" / "shiftql.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("setting", SETTINGS, ids=lambda s: s.name)
def test_readme_documents_every_setting(setting: object) -> None:
    row = re.search(rf"^\| `{setting.name}` \| (.+?) \| (.+?) \|$", README, re.M)  # type: ignore[attr-defined]
    assert row, f"README's settings table has no row for {setting.name}"  # type: ignore[attr-defined]
    assert row.group(2) == setting.help  # type: ignore[attr-defined]
    default = str(setting.default) or "(empty)"  # type: ignore[attr-defined]
    assert row.group(1).strip("`") == default


def test_readme_starts_with_the_two_commands() -> None:
    block = README.split("```bash\n", 1)[1].split("```", 1)[0].splitlines()
    assert block[0].startswith("./scripts/setup && ")
    assert block[1].startswith("./scripts/setup && ./scripts/check")
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert block[1].split("#")[0].strip() in ci


def _sql_blocks(text: str) -> list[str]:
    return re.findall(r"```sql\n(.*?)```", text, re.S)


@pytest.mark.parametrize("block", _sql_blocks(README) + _sql_blocks(LANGUAGE))
def test_documented_examples_parse(block: str) -> None:
    assert parse_script(block).statements


def test_tour_example_parses() -> None:
    script = parse_script((ROOT / "examples" / "tour.shiftql").read_text(encoding="utf-8"))
    assert len(script.statements) == 10


@pytest.mark.parametrize("doc", [README, LANGUAGE], ids=["README", "shiftql.md"])
def test_shown_error_output_is_what_shift_prints(doc: str) -> None:
    """Each ``<query>:`` block in the docs is exactly what the parser reports."""
    for block in re.findall(r"```\n(?:\$ [^\n]*\n)?(<query>:.*?)```", doc, re.S):
        line = block.splitlines()[1]
        query = line.split("| ", 1)[1]
        result = subprocess.run(
            [sys.executable, "-m", "shift", "parse", query],
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 2
        assert result.stderr == block
