"""The supervisor refuses a backup folder that is not there, and says why."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from edgenode import settings as settings_mod
from edgenode.backup.status import backup_status
from edgenode.backup.supervisor import Supervisor
from edgenode.errors import ConfigError
from edgenode.settings import NODE_SETTINGS


def test_an_unmounted_backup_disk_is_an_error_and_nothing_is_written_in_its_place(tmp_path: Path) -> None:
    data = tmp_path / "node"
    data.mkdir()
    (data / "node.toml").write_text('node_id = "honcho-1"\n')
    gone = tmp_path / "mnt" / "usb"
    s = settings_mod.load(NODE_SETTINGS, data / "node.toml", {}, {"backup_path": str(gone)})
    stop = threading.Event()
    status_file = data / "backup" / "status.json"
    sup = Supervisor(data, s, check_interval=0.05)
    t = threading.Thread(target=sup.run, args=(stop,))
    t.start()
    try:
        seen = None
        for _ in range(400):  # bounded: the first check writes the file
            if status_file.exists():
                seen = backup_status(data, s)
                break
            stop.wait(0.05)
    finally:
        stop.set()
        t.join(timeout=30)
    assert seen is not None and seen["state"] == "error"
    assert "mounted" in seen["hint"] and not gone.exists() and sup.proc is None
    assert json.loads(status_file.read_text())["state"] == "stopped"


def test_a_second_supervisor_for_the_same_folder_is_refused(tmp_path: Path) -> None:
    data = tmp_path / "node"
    (data / "backup").mkdir(parents=True)
    s = settings_mod.load(NODE_SETTINGS, None, {}, {"backup_path": str(tmp_path)})
    held = Supervisor(data, s)._lock_folder()
    try:
        with pytest.raises(ConfigError, match="backup_in_serve = false"):
            Supervisor(data, s).run(threading.Event())
    finally:
        held.close()
