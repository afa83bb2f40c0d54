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
