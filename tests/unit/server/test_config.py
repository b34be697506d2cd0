"""Server settings: TOML loading, validation and layering."""

import os
from pathlib import Path

import pytest

from securechat.server.config import ConfigError, ServerConfig, build_config, load_config, validate


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "securechat.toml"
    path.write_text(text)
    return path


def test_toml_values_override_defaults(tmp_path: Path) -> None:
    config = build_config(load_config(write(tmp_path, 'port = 7000\nname = "irc.example"\n')))
    assert config.port == 7000 and config.name == "irc.example"


def test_later_layers_win_and_none_is_skipped() -> None:
    config = build_config({"port": 7000}, {"port": 7001, "name": None})
    assert config.port == 7001 and config.name == ServerConfig().name


def test_missing_file_is_one_clear_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"config file .*nope\.toml does not exist"):
        load_config(tmp_path / "nope.toml")


def test_invalid_toml_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="is not valid TOML"):
        load_config(write(tmp_path, "port = = 1"))


def test_unknown_key_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown setting 'prot'"):
        load_config(write(tmp_path, "prot = 1"))


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("port", 70000, "port number from 0 to 65535"),
        ("port", "abc", "port number"),
        ("ping_interval", 0, "greater than 0"),
        ("sendq_bytes", -5, "at least 1"),
        ("log_level", "loud", "one of debug, info"),
        ("log_messages", "yes", "true or false"),
        ("name", "", "non-empty string"),
        ("exempt", [1], "list of strings"),
    ],
)
def test_bad_values_name_the_key(key: str, value: object, message: str) -> None:
    with pytest.raises(ConfigError, match=f"{key} must be .*{message}|{message}"):
        validate(key, value)


@pytest.mark.parametrize("value", [65, -1, "many", True, 2.5])
def test_workers_is_a_bounded_count(value: object) -> None:
    with pytest.raises(ConfigError, match="workers must be auto or a number from 0 to 64"):
        validate("workers", value)


def test_workers_auto_is_one_per_cpu_within_the_bound() -> None:
    assert validate("workers", "auto") == min(os.cpu_count() or 1, 64)
    assert validate("workers", "2") == 2 and validate("workers", 0) == 0


def test_flag_strings_are_converted() -> None:
    assert validate("port", "6697") == 6697
    assert validate("cert", "a.pem") == Path("a.pem")


EXAMPLE = Path(__file__).resolve().parents[3] / "securechat.example.toml"


def test_example_config_loads_cleanly() -> None:
    build_config(load_config(EXAMPLE))


def test_example_config_documents_every_setting() -> None:
    text = EXAMPLE.read_text()
    missing = [
        key
        for key in ServerConfig.__dataclass_fields__
        if f"\n{key} =" not in text and f"\n# {key} =" not in text and f"[{key}." not in text
    ]
    assert missing == []


def test_flush_pause_ms_takes_zero_to_fifty_milliseconds(tmp_path: Path) -> None:
    for given, pause in (("0", 0.0), ("2.5", 2.5), ("50", 50.0)):
        config = build_config(load_config(write(tmp_path, f"flush_pause_ms = {given}\n")))
        assert config.flush_pause_ms == pause
    for bad in ("-1", "51", '"fast"'):
        with pytest.raises(ConfigError, match="flush_pause_ms"):
            load_config(write(tmp_path, f"flush_pause_ms = {bad}\n"))
