from __future__ import annotations

from pathlib import Path

import pytest

from edgenode.errors import ConfigError
from edgenode.settings import NODE_SETTINGS, load, write


def test_precedence_is_flag_then_environment_then_file_then_default(tmp_path: Path) -> None:
    f = tmp_path / "node.toml"
    write(NODE_SETTINGS, f, {"port": 9001, "feed_wait": 5.0, "token": "en1.secret"})
    s = load(NODE_SETTINGS, f, {"EDGENODE_FEED_WAIT": "7"}, {"port": None, "bandwidth_limit": 48000})
    assert s["port"] == 9001  # file (flag given as None means "not given")
    assert s["feed_wait"] == 7.0  # environment beats file
    assert s["bandwidth_limit"] == 48000  # flag
    assert s["backoff_max"] == 60.0  # default
    assert oct(f.stat().st_mode & 0o777) == "0o600"


def test_secrets_never_render(tmp_path: Path) -> None:
    s = load(NODE_SETTINGS, None, {"EDGENODE_TOKEN": "en1.topsecret"}, {})
    assert "topsecret" not in repr(s) and "topsecret" not in str(s.render())
    assert s["token"] == "en1.topsecret"


def test_bad_values_are_refused_with_the_setting_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="bandwidth_limit"):
        load(NODE_SETTINGS, None, {"EDGENODE_BANDWIDTH_LIMIT": "fast"}, {})
    with pytest.raises(ConfigError, match="at least"):
        load(NODE_SETTINGS, None, {}, {"bandwidth_limit": -1})
    f = tmp_path / "node.toml"
    f.write_text("colour = 'blue'\n")
    with pytest.raises(ConfigError, match="unknown setting"):
        load(NODE_SETTINGS, f, {}, {})
    f.write_text("port = [\n")
    with pytest.raises(ConfigError, match="TOML"):
        load(NODE_SETTINGS, f, {}, {})
