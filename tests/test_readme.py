"""The README's example runs and prints what the README says it prints."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def _example() -> tuple[str, str]:
    text = README.read_text()
    section = text[text.index("## Example\n"):]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    shown = re.search(r"```text\n(.*?)```", section, re.S).group(1)
    return code, shown


def test_the_readme_example_prints_what_the_readme_shows(tmp_path):
    code, shown = _example()
    (tmp_path / "example.py").write_text(code)
    run = subprocess.run([sys.executable, "example.py"], cwd=tmp_path, text=True,
                         capture_output=True, timeout=300, check=True)
    printed = run.stdout.replace(f"{tmp_path}/", "")
    assert printed == shown
