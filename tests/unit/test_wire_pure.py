"""units.wire imports dbus-fast's pure-Python sources too (what the Debian package vendors),
not only its compiled wheels, whose modules enter their import cycle differently."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import dbus_fast

from rctlbase.run import run_program

PROJECT = Path(__file__).resolve().parents[2]


def test_wire_imports_with_pure_python_dbus_fast(tmp_path: Path) -> None:
    source = Path(dbus_fast.__file__).parent
    shutil.copytree(source, tmp_path / "dbus_fast", ignore=shutil.ignore_patterns("*.so"))
    script = (
        "import sys; sys.path[:0] = sys.argv[1:3]\n"
        "import units.manager, dbus_fast.message as m\n"
        "assert m.__file__.endswith('.py'), m.__file__\n"
        "assert 'asyncio' not in sys.modules\n"
    )
    result = run_program(
        [sys.executable, "-I", "-c", script, str(tmp_path), str(PROJECT)], check=False
    )
    assert result.returncode == 0, result.stderr.decode()
