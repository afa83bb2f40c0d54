from __future__ import annotations

import json
import logging

import pytest

from edgenode import logs


def test_tokens_never_reach_the_log_and_json_lines_parse(capsys: pytest.CaptureFixture[str]) -> None:
    logs.setup(fmt="json")
    log = logging.getLogger("edgenode.test")
    token = "en1." + "A" * 43
    log.warning("request to /v1/whoami with %s failed", token)
    try:
        raise RuntimeError(f"Authorization: Bearer {token}")
    except RuntimeError:
        log.exception("boom")
    lines = [json.loads(x) for x in capsys.readouterr().err.splitlines()]
    assert lines[0]["level"] == "warning" and "en1.********" in lines[0]["message"]
    assert all(token not in json.dumps(x) for x in lines)


@pytest.mark.parametrize(
    ("env", "expect_json"),
    [
        ({"JOURNAL_STREAM": "8:12345"}, True),  # systemd connected stderr to the journal
        ({"INVOCATION_ID": "0" * 32}, True),  # a systemd service with stderr elsewhere (not a terminal)
        ({}, False),  # anything else: readable lines
    ],
)
def test_auto_format_is_json_under_systemd_and_text_elsewhere(
    env: dict[str, str], expect_json: bool, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for k in ("JOURNAL_STREAM", "INVOCATION_ID"):
        monkeypatch.delenv(k, raising=False)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    logs.setup(fmt="auto")
    logging.getLogger("edgenode.test").info("node serving on http://127.0.0.1:8800")
    line = capsys.readouterr().err.strip()
    if expect_json:
        assert json.loads(line)["message"] == "node serving on http://127.0.0.1:8800"
    else:
        assert line.endswith("INFO edgenode.test: node serving on http://127.0.0.1:8800")
