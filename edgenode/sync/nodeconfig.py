"""Creating a node's data folder and loading its settings."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from edgenode import settings as settings_mod
from edgenode.durable import open_db, utcnow
from edgenode.errors import ConfigError
from edgenode.ids import NODE_ID_RE, valid_lg_code
from edgenode.resident import validate_staff
from edgenode.settings import NODE_SETTINGS, Settings
from edgenode.signing import PinnedVerifier, key_id

CONFIG_NAME = "node.toml"


def load_node_settings(
    data: Path, env: Mapping[str, str] | None = None, flags: Mapping[str, Any] | None = None
) -> Settings:
    """The node's settings: flags > EDGENODE_* environment > node.toml > defaults."""
    path = data / CONFIG_NAME
    if not path.exists():
        raise ConfigError(f"no node in {data}: run `edgenode node init` first")
    return settings_mod.load(NODE_SETTINGS, path, env if env is not None else os.environ, flags or {})


def init_node(
    data: Path, hub_url: str, token: str, node_id: str, lg_code: str | None = None, hub_key: str | None = None
) -> Settings:
    """Create (or re-point) a node: ask the hub who the token belongs to and pin its key.

    Without network, `lg_code` and `hub_key` may be given instead (for a node that will be
    bootstrapped from physical media first); the key's fingerprint is then the operator's check.
    """
    from edgenode.sync.client import HttpFeedClient

    parsed = urlparse(hub_url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise ConfigError(f"--hub must be an http(s) URL, got {hub_url!r}")
    if not NODE_ID_RE.match(node_id):
        raise ConfigError(f"--node must be letters, digits, '.', '_' or '-': {node_id!r}")
    if not token.startswith("en1.") or len(token) > 200:
        raise ConfigError("--token is not an edgenode token (get one with `edgenode hub token`)")
    if hub_key is None:
        client = HttpFeedClient(hub_url, token, lg_code or "000000", timeout=15.0)
        try:
            who = client.whoami()
        finally:
            client.close()
        if who.get("node_id") != node_id:
            raise ConfigError(f"this token was issued for node {who.get('node_id')!r}, not {node_id!r}")
        if lg_code is not None and who.get("lg_code") != lg_code:
            raise ConfigError(f"this token belongs to municipality {who.get('lg_code')}, not {lg_code}")
        lg_code = str(who.get("lg_code"))
        hub_key = str(who.get("public_key"))
        municipality = str(who.get("name") or "")
    else:
        municipality = ""
    if lg_code is None:
        raise ConfigError("--lg-code is required together with --hub-key")
    valid_lg_code(lg_code)
    PinnedVerifier(hub_key)  # refuses a malformed key
    data.mkdir(parents=True, exist_ok=True)
    existing = data / CONFIG_NAME
    if existing.exists():
        old = settings_mod.load(NODE_SETTINGS, existing, {}, {})
        if old["lg_code"] and old["lg_code"] != lg_code:
            raise ConfigError(f"{data} already holds a node of municipality {old['lg_code']}; use a new folder")
        values = dict(old)
    else:
        values = {}
    values.update(hub_url=hub_url, token=token, node_id=node_id, lg_code=lg_code, hub_public_key=hub_key)
    settings_mod.write(NODE_SETTINGS, existing, values)
    (data / "inbox").mkdir(exist_ok=True)  # snapshot files from physical media go here
    if municipality:
        write_certs_template(data, lg_code, municipality)
    return settings_mod.load(NODE_SETTINGS, existing, {}, {})


CERTS_TEMPLATE = """# 証明書の設定 (edgenode.certs.config.CertConfig)。町長名を設定するまで証明書は交付できません。
# Certificate settings; certificates cannot be issued until mayor_name is set.
prefecture = "{prefecture}"
municipality = "{municipality}"
mayor_title = "{mayor_title}"
mayor_name = "{mayor_name}"
# seal_image = "/etc/edgenode/seal.png"   # 職印 (PNG, printed black, at most 25 mm)
# fee_per_copy = 300
# printer_no = 1
"""


def write_certs_template(
    data: Path, lg_code: str, municipality: str, mayor_name: str = "", *, replace: bool = False
) -> Path:
    """Write DATA/certs.toml (unless present) with the municipality filled in from its code and name."""
    from edgenode.hub.synth import PREFECTURES

    path = data / "certs.toml"
    if path.exists() and not replace:
        return path
    prefecture = PREFECTURES.get(lg_code[:2], "")
    title = "市長" if municipality.endswith("市") else "村長" if municipality.endswith("村") else "町長"
    text = CERTS_TEMPLATE.format(
        prefecture=prefecture, municipality=municipality, mayor_title=title, mayor_name=mayor_name
    )
    path.write_text(text, encoding="utf-8")
    return path


def hub_key_fingerprint(public_b64: str) -> str:
    """The short fingerprint operators compare when pinning a hub key by hand."""
    return key_id(public_b64)


def add_local_user(data: Path, user: str, role: str, password: str) -> None:
    """A local emergency account on a node (works with no hub at all)."""
    from argon2 import PasswordHasher

    if len(password) < 8:
        raise ConfigError("the password must have at least 8 characters")
    rec = {"user": user, "role": role, "password_hash": PasswordHasher().hash(password)}
    validate_staff(rec)
    conn = open_db(
        data / "node.db",
        "CREATE TABLE IF NOT EXISTS local_user (user TEXT PRIMARY KEY, role TEXT NOT NULL,"
        " password_hash TEXT NOT NULL, created_at TEXT NOT NULL)",
    )
    try:
        conn.execute(
            "INSERT OR REPLACE INTO local_user (user, role, password_hash, created_at) VALUES (?, ?, ?, ?)",
            (user, role, rec["password_hash"], utcnow()),
        )
    finally:
        conn.close()
