"""The README's quick start runs as written, and its test command is the one CI runs."""

from __future__ import annotations

import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def test_quick_start_runs(capsys):
    block = re.search(r"```python\n(.*?)```", README, re.S).group(1)
    exec(compile(block, "README.md quick start", "exec"), {})
    assert "gumbel" in capsys.readouterr().out


def test_readme_opens_with_the_two_commands_and_ci_uses_the_second():
    commands = re.findall(r"```bash\n(.*?)\n```", README, re.S)
    assert commands[0].startswith("bash scripts/bootstrap.sh") and "reproduce table1" in commands[0]
    assert commands[1].startswith("bash scripts/bootstrap.sh test") and "pytest" in commands[1]
    assert "<!-- test-command -->" in README.split(commands[1])[0]
    assert "test-command" in (ROOT / ".ci" / "run").read_text()
