"""Tests for the typer command functions, run through a tiny typer app."""

from __future__ import annotations

import json

import typer
from typer.testing import CliRunner

from nlp.commands import classify_cmd, eval_cmd


def _app() -> typer.Typer:
    app = typer.Typer()
    app.command("classify")(classify_cmd)
    app.command("eval")(eval_cmd)
    return app


def test_classify_reads_stdin_and_prints_json_lines() -> None:
    posts = ["@Delta lost my bag again, useless airline", "@Delta thanks, lovely crew!", "", "🔥🔥"]
    result = CliRunner().invoke(_app(), ["classify"], input="\n".join(posts) + "\n")
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.output.splitlines()]
    assert len(lines) == 4
    for obj in lines:
        assert obj["label"] in {"complaint", "not_complaint"}
        assert 0.0 <= obj["score"] <= 1.0
        assert "severity" in obj
    assert lines[0]["label"] == "complaint" and lines[0]["ticket"] is True
    assert lines[1]["label"] == "not_complaint" and lines[1]["ticket"] is False
    # Posts the model cannot judge are filed for human triage whatever label the model guesses.
    assert lines[2]["triage_reason"] == "empty" and lines[2]["ticket"] is True
    assert lines[3]["triage_reason"] == "emoji_only" and lines[3]["ticket"] is True


def test_classify_takes_arguments_and_threshold() -> None:
    result = CliRunner().invoke(_app(), ["classify", "--threshold", "1.0", "my order never came"])
    assert result.exit_code == 0, result.output
    (obj,) = [json.loads(line) for line in result.output.splitlines()]
    assert obj["label"] == "not_complaint"


def test_eval_prints_report(tmp_path) -> None:
    path = tmp_path / "e.csv"
    path.write_text(
        "text,label,domain\nmy order never came,1,retail\nthanks so much,0,random_tweet\n"
        "@shop https://t.co/photo,0,random_reply\n"
    )
    result = CliRunner().invoke(_app(), ["eval", str(path)])
    assert result.exit_code == 0, result.output
    assert "company-addressed" in result.output
    # The link-only post goes to human triage: the report also shows what is filed.
    assert "plus 1 post(s) the model cannot judge" in result.output
    assert "filed: overall" in result.output
