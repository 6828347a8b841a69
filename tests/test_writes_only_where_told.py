"""The library writes only where it is told: every documented command, run from the repository's
root with `--out` in a temporary folder, leaves every file of the repository as it was (no doc
section rewritten, no `runs/` folder made); no command can write a doc (the docs tool alone does,
tests/test_docs_tool.py), and the docs tool's `--check` writes nothing."""

import os
from pathlib import Path

import pytest
from helpers import script
from test_demo import skipped_memory

import plasticity.lab.demo as demo
from plasticity.lab.cli import main
from plasticity.lab.demo import DemoConfig

ROOT = Path(__file__).resolve().parents[1]
# Folders that tools outside the library write (caches of Python, pytest, hypothesis, pip).
TOOL_FOLDERS = {".git", "__pycache__", ".pytest_cache", ".hypothesis", ".ruff_cache"}


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    """(size, mtime in ns) of every file under `root` outside the tools' caches."""
    files = {}
    for folder, subfolders, names in os.walk(root):
        subfolders[:] = [s for s in subfolders if s not in TOOL_FOLDERS and not s.endswith(".egg-info")]
        for name in names:
            stat = (Path(folder) / name).stat()
            files[str(Path(folder, name).relative_to(root))] = (stat.st_size, stat.st_mtime_ns)
    return files


def commands(out: Path) -> list[list[str]]:
    """The README's and docs' commands, each with its smallest settings and `--out` under `out`."""
    tiny = ["--epochs", "1", "--hidden", "16", "--quiet"]
    return [
        ["train", "--rule", "dfa", "--data", "digits", "--out", str(out / "train"), *tiny],
        ["bench", "--rules", "bp,fa", "--data", "digits", "--seeds", "1", "--out", str(out / "bench"), *tiny],
        ["report", str(out / "bench"), "--out", str(out / "report")],
        ["card", "--rule", "fa", "--verify"],
        ["continual", "--data", "digits", "--tasks", "2", "--seeds", "1", "--methods", "ncm,structural", "--out", str(out / "continual"), "--quiet"],
        ["demo", "--out", str(out / "demo"), "--quiet"],
        ["data", "list"],
    ]


def test_documented_commands_leave_the_repository_untouched(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    monkeypatch.setattr(demo, "DemoConfig", lambda **kw: DemoConfig(datasets=("digits",), epochs={"digits": 1}, seeds=1, hidden=(16,), rules=("bp",), **kw))
    monkeypatch.setattr(demo, "continual_demo", skipped_memory)
    before = snapshot(ROOT)
    for argv in commands(tmp_path):
        assert main(argv) == 0, argv
    after = snapshot(ROOT)
    changed = sorted(name for name in before.keys() | after.keys() if before.get(name) != after.get(name))
    assert changed == []
    assert (tmp_path / "bench" / "results.jsonl").exists() and (tmp_path / "report" / "index.html").exists()


DOC_OPTIONS = ("--doc", "--readme", "--section", "--title")


@pytest.mark.parametrize("command", [["bench"], ["demo"], ["card"], ["continual"], ["report", "runs"]])
def test_no_command_takes_a_doc_to_write(command, capsys):
    """Docs are written by `python tools/docs.py` only: every command refuses the options that used to write one."""
    from plasticity.lab.cli import build_parser

    for option in DOC_OPTIONS:
        with pytest.raises(SystemExit):
            build_parser().parse_args([*command, option, "x"])
        assert "unrecognized arguments" in capsys.readouterr().err


def test_the_docs_tools_check_writes_nothing(capsys):
    with script("tools/docs.py", "docs_check") as tool:
        before = snapshot(ROOT)
        tool.main(["--check"])
    assert snapshot(ROOT) == before
