"""Tests for the typer command functions, run through a tiny typer app."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from fairdesk.nlp.classify import MODEL_DIR
from fairdesk.nlp.commands import classify_cmd, eval_cmd
from tests.nlp.conftest import TINY_ROWS


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


# `fairdesk train` / `fairdesk eval` as a newcomer meets them, through the real command line


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_train_without_training_data_is_one_line_and_leaves_the_shipped_model_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fairdesk.cli import app

    monkeypatch.chdir(tmp_path)  # a fresh clone: no ../shared/data next to it
    shipped = _files(MODEL_DIR)
    result = CliRunner().invoke(app, ["train"])
    assert result.exit_code == 1 and not isinstance(result.exception, FileNotFoundError)
    (line,) = result.stderr.splitlines()
    assert line.startswith("fairdesk: ../shared/data/complaints/train.csv: training data not found; pass --data")
    assert result.stdout == "" and _files(MODEL_DIR) == shipped


def test_train_writes_to_a_folder_of_its_own_by_default_byte_for_byte_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fairdesk.cli import app

    monkeypatch.chdir(tmp_path)
    data = tmp_path / "mine.csv"
    data.write_text("text,label\n" + "".join(f'"{r.text}",{r.label}\n' for r in TINY_ROWS), encoding="utf-8")
    shipped = _files(MODEL_DIR)
    first = CliRunner().invoke(app, ["train", "--data", "mine.csv"])
    assert first.exit_code == 0, first.output
    assert _files(MODEL_DIR) == shipped  # the checkout's model is only replaced with an explicit --out
    made = tmp_path / json.loads(first.stdout)["out_dir"]
    assert made.resolve() != MODEL_DIR and made.parent == tmp_path and (made / "config.cfg").is_file()
    trained = _files(made)
    again = CliRunner().invoke(app, ["train", "--data", "mine.csv"])
    assert again.exit_code == 0, again.output
    assert _files(made) == trained  # reproducible: the same data and seed give the same bytes


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (None, "not found"),
        ("words,score\nhello,1\n", "needs the columns text and label"),
        ("text,label\nhello,maybe\n", "line 2: label must be 0 or 1"),
        (b"text,label\n\xff\xfe,1\n", "not UTF-8"),
    ],
)
def test_train_and_eval_on_a_bad_file_say_what_is_wrong_in_one_line(
    tmp_path: Path, content: str | bytes | None, problem: str
) -> None:
    from fairdesk.cli import app

    path = tmp_path / "posts.csv"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content, encoding="utf-8")
    for args in (["eval", str(path)], ["train", "--data", str(path), "--out", str(tmp_path / "out")]):
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 1 and result.exception is not None, (args, result.output)
        assert isinstance(result.exception, SystemExit), (args, result.exception)
        (line,) = result.stderr.splitlines()
        assert line.startswith(f"fairdesk: {path}") and problem in line, (args, line)
    assert not (tmp_path / "out").exists()
