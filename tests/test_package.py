"""The package surface: actadapt.plot reachable after `import actadapt` without importing matplotlib up
front, and `actadapt --version` (issue 12, item 6)."""

from __future__ import annotations

import os
import subprocess
import sys

import actadapt
from actadapt.cli import main

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _python(code: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=os.path.join(ROOT, "src") + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)


def test_plot_is_an_attribute_imported_on_first_use():
    done = _python(
        "import sys, actadapt\n"
        "assert 'actadapt.plot' not in sys.modules and 'matplotlib' not in sys.modules\n"
        "f = actadapt.plot.plot_alpha_histogram\n"
        "assert 'actadapt.plot' in sys.modules and 'matplotlib' not in sys.modules  # matplotlib: inside the functions\n"
        "print('plot' in dir(actadapt) or 'plot' in actadapt.__all__)\n"
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "True"


def test_unknown_attribute_is_still_an_attribute_error():
    try:
        actadapt.no_such_thing  # noqa: B018
    except AttributeError as err:
        assert "no_such_thing" in str(err)
    else:  # pragma: no cover
        raise AssertionError("expected AttributeError")


def test_version_flag(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"actadapt {actadapt.__version__}"
