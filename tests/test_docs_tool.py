"""The docs tool (`python tools/docs.py`), the only code that writes docs: its manifest covers exactly
the generated sections of the docs, it regenerates a section from stored runs made by the section's
own command, `--check` fails on a stale section and passes once it is regenerated, stored runs that
are not the command's are refused in one line, and the real docs are up to date with their stored runs."""

from __future__ import annotations

import re
import shlex
import shutil
import warnings
from dataclasses import replace
from pathlib import Path

import pytest
from helpers import script
from test_demo import skipped_memory, tiny
from test_report import PNG_SIGNATURE

import plasticity.lab.demo as demo
from plasticity.errors import ConfigError
from plasticity.lab.cli import main as plasticity

ROOT = Path(__file__).resolve().parents[1]
MARKER = re.compile(r"^<!-- bench:(\S+) -->$", re.MULTILINE)
DOC = "# Doc\n\nProse stays.\n\n<!-- bench:smoke -->\nold\n<!-- /bench:smoke -->\n\nMore prose.\n\n<!-- bench:other -->\nkept\n<!-- /bench:other -->\n"
BENCH = "plasticity bench --rules bp,fa --data digits --seeds 1 --epochs 1 --hidden 8 --observe alignment --out runs/smoke --quiet"


@pytest.fixture(scope="module")
def tool():
    with script("tools/docs.py", "docs_tool") as module:
        yield module


def run(command: str, root: Path, monkeypatch) -> None:
    """Make stored runs as the manifest says: the command itself, run in `root`."""
    monkeypatch.chdir(root)
    assert plasticity(shlex.split(command)[1:]) == 0


@pytest.fixture(scope="module")
def stored_bench(tmp_path_factory):
    """A tiny stored bench (1 epoch, hidden 8, with the alignment observer), made by BENCH."""
    root = tmp_path_factory.mktemp("stored")
    with pytest.MonkeyPatch.context() as monkeypatch:
        run(BENCH, root, monkeypatch)
    return root / "runs" / "smoke"


def workspace(tmp_path: Path, stored_bench: Path) -> Path:
    """A root holding a copy of DOC and of the stored bench."""
    shutil.copytree(stored_bench, tmp_path / "runs" / "smoke")
    (tmp_path / "doc.md").write_text(DOC, encoding="utf-8")
    return tmp_path


def smoke(tool, command: str = BENCH):
    return tool.Entry("smoke", "doc.md", "Smoke", "bench", "runs/smoke", command)


def test_the_manifest_covers_exactly_the_generated_sections_of_the_docs(tool):
    docs = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    found = {(str(doc.relative_to(ROOT)), name) for doc in docs for name in MARKER.findall(doc.read_text(encoding="utf-8"))}
    listed = [(entry.file, entry.name) for entry in tool.MANIFEST]
    assert sorted(listed) == sorted(found)
    assert len({entry.name for entry in tool.MANIFEST}) == len(tool.MANIFEST)  # --only NAME names one section
    for entry in tool.MANIFEST:
        tool.check_section(entry.name)
        argv = shlex.split(entry.command)
        out = argv[argv.index("--out") + 1]
        assert out in (entry.runs, f"{entry.runs}/{tool.KINDS[entry.kind].stored}"), entry.name
        assert entry.runs.startswith("docs/runs/") and entry.kind in tool.KINDS
        if entry.kind in ("bench", "suite"):
            tool.bench_config(entry.command, ROOT)  # the command parses into a grid that can run


def test_a_section_is_regenerated_from_its_stored_runs_and_checked(tool, stored_bench, tmp_path, capsys):
    root = workspace(tmp_path, stored_bench)
    entries = (smoke(tool),)
    assert tool.main(["--check"], entries, root) == 1
    assert "smoke (doc.md): stale" in capsys.readouterr().out
    assert (root / "doc.md").read_text(encoding="utf-8") == DOC  # --check writes nothing

    assert tool.main([], entries, root) == 0
    text = (root / "doc.md").read_text(encoding="utf-8")
    assert f"<!-- bench:smoke -->\nProduced by `{BENCH}`. Regenerate with `python tools/docs.py --only smoke`.\n\nSetup: network: MLP 8 tanh" in text
    assert "old" not in text and "| digits | fa |" in text and "| digits | fa | layer 1:" in text  # the table and the angles
    assert "Prose stays." in text and "More prose." in text and "<!-- bench:other -->\nkept\n" in text
    assert tool.main(["--check"], entries, root) == 0
    assert "1 section(s) up to date" in capsys.readouterr().out

    (root / "doc.md").write_text(text.replace("| digits | fa |", "| digits | fa (edited) |"), encoding="utf-8")
    assert tool.main(["--check", "--only", "smoke"], entries, root) == 1
    assert tool.main(["--list"], entries, root) == 0
    assert "smoke (doc.md, bench, stored runs runs/smoke): stale" in capsys.readouterr().out


def test_stored_runs_that_are_not_the_commands_are_refused_in_one_line(tool, stored_bench, tmp_path, capsys):
    root = workspace(tmp_path, stored_bench)
    other = smoke(tool, BENCH.replace("--epochs 1", "--epochs 2"))
    state, text = tool.status(other, root)
    assert text is None and state.startswith("refused: ") and "holds no run of bp on digits seed 0" in state and "\n" not in state
    assert tool.main(["--check"], (other,), root) == 1
    assert tool.main([], (other,), root) == 1 and (root / "doc.md").read_text(encoding="utf-8") == DOC

    summary = root / "runs" / "smoke" / "summary.json"
    summary.write_text(summary.read_text().replace('"label": "fa"', '"label": "dfa"'))
    assert "summarises other runs" in tool.status(smoke(tool), root)[0]

    missing = tool.Entry("gone", "doc.md", "Gone", "bench", "runs/gone", BENCH.replace("runs/smoke", "runs/gone"))
    assert tool.status(missing, root) == (tool.MISSING, None)
    capsys.readouterr()
    assert tool.main(["--check"], (missing,), root) == 1
    assert f"gone (doc.md): no stored runs; make them with `{missing.command}`" in capsys.readouterr().out
    assert tool.main(["--only", "nope"], (missing,), root) == 2
    assert "no section 'nope'" in capsys.readouterr().err


def test_sections_are_replaced_in_place_or_appended_under_their_title(tool, tmp_path):
    doc = tmp_path / "bench.md"
    doc.write_text("# Benchmarks\n\nProse stays.\n")
    tool.write_section(doc, "a", "first", title="A")
    tool.write_section(doc, "b", "other", title="B")
    tool.write_section(doc, "a", "second")
    text = doc.read_text()
    assert "Prose stays." in text and "## A\n\n<!-- bench:a -->\nsecond\n" in text and "first" not in text and "other" in text
    assert text.count("<!-- bench:a -->") == 1
    quoted = "Its markers, `<!-- bench:c -->` and `<!-- /bench:c -->`, are quoted here.\n"
    doc.write_text(quoted)
    assert tool.current(doc, "c") is None  # a marker quoted in prose is not a section


def test_an_empty_section_is_filled_in_place_and_never_swallows_what_follows(tool, tmp_path):
    doc = tmp_path / "memory.md"
    doc.write_text("## A\n\n<!-- bench:a -->\n<!-- /bench:a -->\n\n## B\n\n<!-- bench:b -->\nkept\n<!-- /bench:b -->\n")
    assert tool.current(doc, "a") == ""
    tool.write_section(doc, "a", "filled")
    tool.write_section(doc, "a", "again")  # a second write finds the section where the first put it
    assert doc.read_text() == "## A\n\n<!-- bench:a -->\nagain\n<!-- /bench:a -->\n\n## B\n\n<!-- bench:b -->\nkept\n<!-- /bench:b -->\n"


def test_doc_paths_that_are_no_markdown_file_are_refused_before_writing(tool, tmp_path):
    latin = tmp_path / "latin.md"
    latin.write_bytes(b"caf\xe9\n")
    file = tmp_path / "file"
    file.write_text("")
    for path, problem in [(tmp_path, "is a folder"), (latin, "not UTF-8"), (file / "doc.md", "cannot write"), ("d" * 100_000, "File name too long")]:
        with pytest.raises(ConfigError) as error:
            tool.write_section(path, "smoke", "body")
        message = str(error.value)
        assert problem in message and "\n" not in message and len(message) < 400
    assert latin.read_bytes() == b"caf\xe9\n"  # untouched
    with pytest.raises(ConfigError, match="section name"):
        tool.write_section(tmp_path / "doc.md", "a -->\n<script>", "body")
    assert not (tmp_path / "doc.md").exists()


def test_a_demo_gives_the_readme_its_section_and_figures_and_the_timing_section(tool, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(demo, "DemoConfig", tiny)
    monkeypatch.setattr(demo, "continual_demo", skipped_memory)
    monkeypatch.setattr(tool, "DemoConfig", tiny)
    monkeypatch.setattr(shutil, "which", lambda name: None)  # no Chromium: the screenshot is left alone
    command = "plasticity demo --out docs/runs/demo --quiet"
    run(command, tmp_path, monkeypatch)
    (tmp_path / "README.md").write_text("# project\n\n<!-- bench:demo -->\nold\n<!-- /bench:demo -->\n\nrest\n")
    (tmp_path / "docs" / "report.png").write_bytes(b"an older screenshot")
    readme = tool.Entry("demo", "README.md", "Demo", "demo-readme", "docs/runs/demo", command)
    timing = tool.Entry("demo-timing", "docs/benchmarks.md", "Demo timing", "demo-timing", "docs/runs/demo", command)
    capsys.readouterr()
    assert tool.main([], (readme, timing), tmp_path) == 0
    said = capsys.readouterr().out
    assert "drew docs/demo.png" in said and "docs/report.png left as it is" in said
    text = (tmp_path / "README.md").read_text()
    assert "old" not in text and text.endswith("rest\n") and "| digits | dfa |" in text and "![Test accuracy" in text
    assert (tmp_path / "docs" / "demo.png").read_bytes()[:8] == PNG_SIGNATURE
    assert (tmp_path / "docs" / "report.png").read_bytes() == b"an older screenshot"
    timed = (tmp_path / "docs" / "benchmarks.md").read_text()
    assert "## Demo timing" in timed and "Wall time: **" in timed and "s budget)" in timed and "| digits | dfa |" in timed

    run(command, tmp_path, monkeypatch)  # resumed: its wall time is no demo's cost
    assert "reused earlier runs" in tool.status(timing, tmp_path)[0]
    assert tool.status(readme, tmp_path)[0] == tool.UP_TO_DATE
    monkeypatch.setattr(tool, "DemoConfig", lambda **kw: replace(tiny(**kw), seeds=2))
    assert "other settings than today's DemoConfig" in tool.status(readme, tmp_path)[0]


@pytest.mark.skipif(shutil.which("chromium") is None, reason="no Chromium to screenshot with")
def test_the_report_screenshot_is_taken_with_chromium(tool, stored_bench, tmp_path):
    entry = tool.Entry("demo", "README.md", "Demo", "demo-readme", "runs/smoke", BENCH)
    said = tool.draw_figures(entry, workspace(tmp_path, stored_bench))
    assert said == ["drew docs/demo.png", "took docs/report.png"]
    assert (tmp_path / "docs" / "report.png").read_bytes()[:8] == PNG_SIGNATURE


def test_cards_overhead_and_observer_speed_render_from_their_json(tool, tmp_path, monkeypatch):
    cards = tool.Entry("cards", "rules.md", "Cards", "cards", "runs/cards", "plasticity card --rule fa --verify --out runs/cards/cards.json")
    run(cards.command, tmp_path, monkeypatch)
    text = tool.render(cards, tmp_path)
    assert text.startswith(f"Produced by `{cards.command}`.") and "| weight transport | random |" in text and "| measured weight transport | random |" in text
    command = "python benchmarks/observer_speed.py --repeats 1 --out runs/speed/observer_speed.json"
    speed = tool.Entry("observer-speed", "b.md", "Speed", "observer-speed", "runs/speed", command)
    tool.benchmark_module("observer_speed").main(shlex.split(command)[2:])  # run in tmp_path, as the manifest's command
    assert "| O-information, 64 units × 10,000 samples |" in tool.render(speed, tmp_path)


def test_continual_sections_render_from_the_runs_files(tool, tmp_path, monkeypatch):
    command = "plasticity continual --data digits --tasks 2 --seeds 1 --methods ncm,structural --explain 1 --out runs/c --quiet"
    run(command, tmp_path, monkeypatch)
    results = tool.render(tool.Entry("continual-digits", "m.md", "R", "continual", "runs/c", command), tmp_path)
    assert "Setup: 2 tasks of disjoint classes, task orders (seeds) 0;" in results and "| structural |" in results and "| ncm |" in results
    explained = tool.render(tool.Entry("explain-digits", "m.md", "E", "explain", "runs/c", command), tmp_path)
    assert "| topic | samples | concepts | classes | largest classes |" in explained and "**test[" in explained
    other = tool.Entry("continual-digits", "m.md", "R", "continual", "runs/c", command.replace("--tasks 2", "--tasks 5"))
    assert "was made with other tasks" in tool.status(other, tmp_path)[0]


def test_the_docs_are_up_to_date_with_their_stored_runs(tool):
    """Every section whose stored runs are in docs/runs/ says what they give; a section without
    stored runs is reported here (as a warning), not failed."""
    states = {entry.name: tool.status(entry, ROOT)[0] for entry in tool.MANIFEST}
    missing = sorted(name for name, state in states.items() if state == tool.MISSING)
    if missing:
        warnings.warn(f"no stored runs under docs/runs/ for {', '.join(missing)}: `python tools/docs.py --list` gives their commands", stacklevel=1)
    assert {name: state for name, state in states.items() if state not in (tool.UP_TO_DATE, tool.MISSING)} == {}
