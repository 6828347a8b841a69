"""The typed results schema (`plasticity.results`): every file plasticity wrote before records carried
a schema version reads as version 1 and writes back as it was, plus the version; a newer version is
refused with a message that says which plasticity reads it.

tests/fixtures/results-v1 holds files written by plasticity 0.1.0 before versions were recorded:
    plasticity bench --rules bp,fa --data digits --seeds 1 --epochs 1 --hidden 8 --batch-size 128 --observe pi,omega,alignment --out bench
    plasticity train --rule stdp --epochs 1 --hidden 8 --out train/stdp
    plasticity train --rule sign --epochs 1 --hidden 8 --batch-size 128 --out train/sign
    plasticity continual --data digits --tasks 2 --seeds 1 --methods structural,ncm --out continual
(checkpoints and locks left out).
"""

from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path

import pytest

from plasticity.build import TrainConfig
from plasticity.lab.report import build_report
from plasticity.lab.report.collect import collect
from plasticity.results import (
    SCHEMA_VERSION,
    ContinualResults,
    ContinualSummary,
    Place,
    ResultsError,
    RunRecord,
    RunResults,
    RunSettings,
    SummaryRow,
    read_json,
    read_lines,
)

FIXTURES = Path(__file__).parent / "fixtures" / "results-v1"
RUN_FILES = sorted(FIXTURES.glob("**/results.json"))


def versioned(payload: dict) -> str:
    """The JSON text of an unversioned object once written with the schema version first."""
    return json.dumps({"schema": SCHEMA_VERSION, **payload})


def test_the_unversioned_files_read_as_version_1_and_write_back_unchanged():
    """Byte for byte, key order included: a record holds every field of the files it reads."""
    bench = FIXTURES / "bench" / "results.jsonl"
    for number, line in enumerate(read_lines(bench), 1):
        assert json.dumps(RunRecord.from_json(line, Place(bench, f"record {number}")).to_json()) == versioned(line)
    for path in RUN_FILES:
        payload = read_json(path)
        kind = ContinualResults if "continual" in path.parts else RunResults
        assert json.dumps(kind.from_json(payload, Place(path)).to_json()) == versioned(payload), path
    rows = FIXTURES / "bench" / "summary.json"
    assert [json.dumps(SummaryRow.from_json(row, Place(rows)).to_json()) for row in read_json(rows)] == [versioned(r) for r in read_json(rows)]
    entries = FIXTURES / "continual" / "summary.json"
    written = ContinualSummary.from_json(read_json(entries), Place(entries)).to_json()
    assert [json.dumps(e) for e in written] == [versioned(e) for e in read_json(entries)]


def test_run_settings_are_train_config_field_for_field():
    assert [f.name for f in fields(RunSettings)] == [f.name for f in fields(TrainConfig)]
    resolved = TrainConfig(rule="fa", hidden=(8,)).resolved()
    assert RunSettings(**resolved.to_dict()).to_json() == json.loads(json.dumps(resolved.to_dict()))


def test_a_newer_schema_is_refused_with_the_plasticity_that_reads_it(tmp_path):
    (line,) = read_lines(FIXTURES / "bench" / "results.jsonl")[:1]
    (tmp_path / "bench").mkdir()
    (tmp_path / "bench" / "results.jsonl").write_text(json.dumps({"schema": SCHEMA_VERSION + 1, "renamed": line}) + "\n")
    with pytest.raises(ResultsError, match=r"bench/results.jsonl: record 1 of 1 is in results schema 2, newer than plasticity .* a newer plasticity"):
        collect(tmp_path)
    (tmp_path / "bench" / "results.jsonl").unlink()
    run = read_json(FIXTURES / "train" / "sign" / "results.json")
    future = {**run, "schema": 7, "versions": {**run["versions"], "plasticity": "3.1.0"}}
    (tmp_path / "train" / "sign").mkdir(parents=True)
    (tmp_path / "train" / "sign" / "results.json").write_text(json.dumps(future))
    with pytest.raises(ResultsError) as error:
        build_report(tmp_path, tmp_path / "report")
    message = str(error.value)
    assert message.startswith(f"{tmp_path / 'train' / 'sign' / 'results.json'}: the file is in results schema 7") and "\n" not in message
    assert "read it with plasticity '3.1.0' (which wrote it) or newer" in message and not (tmp_path / "report").exists()


def test_the_report_shows_a_run_of_a_rule_and_model_it_does_not_know(tmp_path):
    """The report reads records, not the rule registry: a rule of one's own (tests/test_newcomer_path.py)
    or a model this plasticity lacks is shown by its name."""
    run = read_json(FIXTURES / "train" / "sign" / "results.json")
    config = {**run["config"], "rule": "half", "model": "transformer"}
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "results.json").write_text(json.dumps({**run, "config": config, "card": {**run["card"], "rule": "half"}}))
    text = build_report(tmp_path, tmp_path / "report").read_text(encoding="utf-8")
    assert "<td>half</td>" in text and "model transformer" in text
