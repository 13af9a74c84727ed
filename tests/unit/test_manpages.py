"""packaging/make-manpages: a page per command, from the commands themselves, valid roff."""

from __future__ import annotations

import importlib.machinery
import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

from rctlbase.run import run_program
from rootless.cli import GROUPS, SHORT

SCRIPT = Path(__file__).resolve().parents[2] / "packaging" / "make-manpages"


def load_script() -> ModuleType:
    loader = importlib.machinery.SourceFileLoader("make_manpages", str(SCRIPT))
    spec = importlib.util.spec_from_loader("make_manpages", loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def pages(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("man")
    assert load_script().main([str(out), "--date", "2026-01-02"]) == 0
    return out


def test_every_command_has_a_page(pages: Path) -> None:
    hidden = {"run-unit", "stopped-unit", "prepare-unit"}
    expected = {"rctl.1", *(f"rctl-{name}.1" for name in SHORT)}
    for group, (_, table) in GROUPS.items():
        expected.add(f"rctl-{group}.1")
        expected |= {f"rctl-{group}-{name}.1" for name in table if name not in hidden}
    assert {p.name for p in pages.iterdir()} == expected


def test_a_page_says_what_the_command_accepts(pages: Path) -> None:
    text = (pages / "rctl-run.1").read_text()
    assert text.startswith('.TH "RCTL-RUN" "1" "2026-01-02" "rctl ')
    assert "rctl\\-run \\- Run a command in a new container." in text
    assert "\\fBrctl run\\fR [OPTIONS] IMAGE [COMMAND]..." in text
    assert "\\fB\\-d, \\-\\-detach\\fR" in text
    overview = (pages / "rctl.1").read_text()
    assert "See \\fBrctl\\-volume\\fR(1)." in overview


def test_help_text_cannot_inject_roff_requests() -> None:
    script = load_script()
    assert script.escape(".SH oops\n'br") == "\\&.SH oops\n\\&'br"
    assert script.escape("a\\b-c") == "a\\eb\\-c"


def test_pages_are_valid_roff(pages: Path) -> None:
    # one groff for all pages (each page starts its own .TH): warnings name the page's line
    result = run_program(["groff", "-man", "-ww", "-z", *map(str, sorted(pages.iterdir()))])
    assert result.stderr == b""
