"""Settings: bad config is refused at start with one line naming the key and the fix; secrets never shown."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest
from pydantic import BaseModel
from typer.testing import CliRunner

from fairdesk.cli import app
from fairdesk.config.example import example_toml
from fairdesk.config.settings import ConfigError, Settings, load_settings, masked_dump


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "fairdesk.toml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("toml", "key", "hint"),
    [
        ('[x.acme]\nhandle = "acme"\nbearer_tokn = "abc"\n', "x.acme.bearer_tokn", "unknown setting"),
        ('[web]\nport = "eighty"\n', "web.port", "without quotes"),
        ("[x.acme]\npoll_seconds = 30\n", "x.acme.handle", "is required"),
        ('[reply]\ntemplate = "Thanks!"\n', "reply.template", "must contain {link}"),
        ('[reply]\ntemplate = "Hi {name}: {link}"\n', "reply.template", "unknown placeholder"),
        ('public_url = "example.com"\n', "public_url", "http://"),
        (
            '[bluesky.acme]\nhandle = "a.test"\napp_password = "changethis"\n',
            "bluesky.acme.app_password",
            "placeholder",
        ),
        ("nlp = 3\n", "nlp", "valid dictionary"),
    ],
)
def test_bad_config_gives_one_line_naming_the_key(tmp_path: Path, toml: str, key: str, hint: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(_write(tmp_path, toml))
    message = str(caught.value)
    assert "\n" not in message
    assert f"`{key}`" in message and hint in message


def test_invalid_toml_and_missing_file_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(_write(tmp_path, "[x\n"))
    with pytest.raises(ConfigError, match="does not exist; `fairdesk init"):
        load_settings(tmp_path / "nope.toml")


def test_cli_exits_with_the_one_line_error_instead_of_a_traceback(tmp_path: Path) -> None:
    path = _write(tmp_path, "[web]\nprot = 80\n")
    result = CliRunner().invoke(app, ["run", "--config", str(path)])
    assert result.exit_code == 2
    assert "config key `web.prot`: unknown setting" in result.output
    assert "Traceback" not in result.output


def test_secrets_come_from_the_environment_and_are_masked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAIRDESK_X__ACME__BEARER_TOKEN", "s3cr3t-bearer")
    path = _write(tmp_path, '[x.acme]\nhandle = "acme"\n')
    settings = load_settings(path)
    assert settings.x["acme"].bearer_token.get_secret_value() == "s3cr3t-bearer"  # type: ignore[union-attr]
    assert "s3cr3t-bearer" not in json.dumps(masked_dump(settings)) and "s3cr3t-bearer" not in repr(settings)
    result = CliRunner().invoke(app, ["config", "--config", str(path)])
    assert result.exit_code == 0 and "s3cr3t-bearer" not in result.output and "**********" in result.output


def test_config_file_from_the_environment_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAIRDESK_CONFIG", str(_write(tmp_path, "[web]\nport = 9001\n[sample.demo]\n")))
    settings = load_settings()
    assert settings.web.port == 9001 and list(settings.sample) == ["demo"]


def test_no_config_runs_the_embedded_default() -> None:
    settings = load_settings()
    assert list(settings.sample) == ["demo"] and not settings.x and not settings.bluesky
    assert settings.resolved_database_url.startswith("sqlite:///")


def test_several_accounts_per_platform(tmp_path: Path) -> None:
    settings = load_settings(_write(tmp_path, '[x.support]\nhandle = "acme_help"\n[x.brand]\nhandle = "acme"\n'))
    assert [(p, n) for p, n, _ in settings.accounts()] == [("x", "support"), ("x", "brand")]


def _models(model: type[BaseModel]) -> list[type[BaseModel]]:
    found = [model]
    for info in model.model_fields.values():
        for arg in (info.annotation, *getattr(info.annotation, "__args__", ())):
            if isinstance(arg, type) and issubclass(arg, BaseModel):
                found += _models(arg)
    return found


def test_every_setting_has_help_text() -> None:
    from fairdesk.config.helpdesks import HELPDESK_KINDS
    from fairdesk.config.settings import BlueskyAccount, SampleAccount, XAccount

    for model in {*_models(Settings), SampleAccount, XAccount, BlueskyAccount, *HELPDESK_KINDS}:
        for name, info in model.model_fields.items():
            assert info.description and len(info.description) > 10, f"{model.__name__}.{name} has no help text"


def test_init_writes_an_example_that_loads_and_documents_every_key(tmp_path: Path) -> None:
    target = tmp_path / "fairdesk.toml"
    result = CliRunner().invoke(app, ["init", str(target)])
    assert result.exit_code == 0 and target.read_text() == example_toml()
    assert CliRunner().invoke(app, ["init", str(target)]).exit_code == 1  # never overwrites
    settings = load_settings(target)
    assert list(settings.sample) == ["demo"]
    tomllib.loads(target.read_text())
    text = target.read_text()
    from fairdesk.config.helpdesks import HELPDESK_KINDS
    from fairdesk.config.settings import BlueskyAccount, XAccount

    for model in (*_models(Settings), XAccount, BlueskyAccount, *HELPDESK_KINDS):
        for name, info in model.model_fields.items():
            assert info.description in text, f"{name} is missing from the example"
    # Uncommenting the X section gives a config that only lacks secrets.
    enabled = text.replace("# [x.acme]", "[x.acme]").replace('# handle = "acme_support"', 'handle = "acme_support"')
    assert load_settings(_write(tmp_path, enabled)).x["acme"].handle == "acme_support"


def test_every_setting_is_in_the_readme_reference() -> None:
    from fairdesk.config.settings import BlueskyAccount, SampleAccount, XAccount

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    sections = {"web": "web.", "reply": "reply.", "nlp": "nlp.", "mail": "mail."}
    for name, info in Settings.model_fields.items():
        model = info.annotation
        if name in sections and isinstance(model, type) and issubclass(model, BaseModel):
            for key in model.model_fields:
                assert f"`{sections[name]}{key}`" in readme, f"{name}.{key} is not in README's configuration table"
        elif name not in ("sample", "x", "bluesky", "helpdesk"):
            assert f"`{name}`" in readme, name
    from fairdesk.config.helpdesks import HELPDESK_KINDS

    kinds = tuple(("helpdesk", kind) for kind in HELPDESK_KINDS)
    for prefix, model in (("sample", SampleAccount), ("x", XAccount), ("bluesky", BlueskyAccount), *kinds):
        for key in model.model_fields:
            assert f"`{prefix}.NAME.{key}`" in readme or f"`{key}`" in readme, f"{prefix}.NAME.{key} is not in README"
