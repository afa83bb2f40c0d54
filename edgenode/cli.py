"""The `edgenode` command: a thin shell over `Hub`, `Syncer` and friends.

Machine-readable output goes to stdout alone; logs and messages go to stderr. Exit codes:
0 success, 1 failure (or `node verify` found differences), 2 bad usage or configuration,
3 the hub could not be reached.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from edgenode import __version__
from edgenode.errors import ConfigError, EdgenodeError, HubUnreachable

log = logging.getLogger("edgenode")


def _read_password() -> str:
    line = sys.stdin.readline()
    if not line:
        raise ConfigError("give the password on standard input")
    return line.rstrip("\r\n")


# ---------------------------------------------------------------- hub


def _hub(args: argparse.Namespace, **flags: Any) -> Any:
    from edgenode import settings as settings_mod
    from edgenode.hub.hub import Hub

    data = Path(args.data)
    s = settings_mod.load(settings_mod.HUB_SETTINGS, data / "hub.toml", os.environ, flags)
    return Hub(data, s)


def hub_init(args: argparse.Namespace) -> int:
    from edgenode import settings as settings_mod

    toml = Path(args.data) / "hub.toml"
    if toml.exists() and args.db:
        kept = settings_mod.load(settings_mod.HUB_SETTINGS, toml, {}, {})["db"]
        if kept != args.db:
            raise ConfigError(f"{toml} already names the hub's store; leave out --db to add a tenant to it")
    hub = _hub(args, db=args.db or None)
    tenant = hub.init_tenant(args.lg_code, args.name, args.residents, args.seed)
    if not toml.exists():
        settings_mod.write(settings_mod.HUB_SETTINGS, toml, {"db": args.db or ""})
    print(
        f"hub ready in {args.data}: {args.lg_code} {args.name}, key {hub.store.key().key_id}, head {tenant.head()}",
        file=sys.stderr,
    )
    return 0


def hub_serve(args: argparse.Namespace) -> int:
    from edgenode import serving
    from edgenode.sdnotify import Notifier

    hub = _hub(args, host=args.host, port=args.port)
    log.info("hub serving on http://%s:%d", hub.settings["host"], hub.settings["port"])
    serving.serve(
        hub.app(),
        hub.settings["host"],
        hub.settings["port"],
        Notifier.from_environ(os.environ),
        f"hub API on {hub.settings['host']}:{hub.settings['port']}",
        loop_watchdog=True,
        log_level="warning",
        timeout_graceful_shutdown=3,
        # a 256 KiB chunk takes ~5.5 s to drain at 48 KB/s: with uvicorn's 5 s default every
        # chunk over LGWAN paid a new TCP connection (measured 67 connections for 58 chunks)
        timeout_keep_alive=75,
    )
    return 0


def hub_simulate(args: argparse.Namespace) -> int:
    head = _hub(args).simulate(args.lg_code, args.changes, args.seed)
    print(f"applied {args.changes} changes; head is now {head}", file=sys.stderr)
    return 0


def hub_token(args: argparse.Namespace) -> int:
    print(_hub(args).store.issue_token(args.lg_code, args.node))
    return 0


def hub_export(args: argparse.Namespace) -> int:
    out = sys.stdout.buffer
    for line in _hub(args).export(args.lg_code):
        out.write(line.encode("utf-8") + b"\n")
    out.flush()
    return 0


def hub_apply(args: argparse.Namespace) -> int:
    path = Path(args.file)
    try:
        with open(path, "rb") as f:
            head = _hub(args).apply_file(args.lg_code, f, path.name)
    except FileNotFoundError as exc:
        raise ConfigError(f"no such file: {path}") from exc
    print(f"applied {path.name}; head is now {head}", file=sys.stderr)
    return 0


def hub_snapshot(args: argparse.Namespace) -> int:
    m = _hub(args).snapshot_file(args.lg_code, Path(args.out))
    print(
        f"snapshot of {args.lg_code} at sequence {m['seq']}: {m['rows']} rows, {m['total_len']} bytes -> {args.out}",
        file=sys.stderr,
    )
    return 0


def hub_migrate(args: argparse.Namespace) -> int:
    _hub(args).migrate()
    print("hub schema is current", file=sys.stderr)
    return 0


def hub_issuances(args: argparse.Namespace) -> int:
    from edgenode.hub.uploads import csv_rows, issuances, totals

    rows = issuances(_hub(args).store.tenant(args.lg_code))
    if args.json:
        print(json.dumps(rows, ensure_ascii=False))
    elif args.csv:
        import csv

        csv.writer(sys.stdout).writerows(csv_rows(rows))
    elif args.totals:
        for t in totals(rows):
            print(f"{t['day']} {t['node_id']}: {t['count']} 件 {t['copies']} 通 {t['fee']} 円 (処分 {t['voided']})")
    else:
        for r in rows:
            flag = f" FINDINGS {len(r['findings'])}" if r["findings"] else ""
            print(f"{r['issued_at']} {r['node_id']} {r['record'].get('kind')} {r['record'].get('requester')}{flag}")
    return 0


def hub_intakes(args: argparse.Namespace) -> int:
    from edgenode.hub.uploads import Rejected, intakes, resolve

    tenant = _hub(args).store.tenant(args.lg_code)
    if args.decide:
        if args.decision not in ("accept", "reject"):
            raise ConfigError("--decide needs --decision accept|reject and --note")
        try:
            resolve(tenant, args.decide, args.decision == "accept", args.note or "", args.by or "datacenter")
        except Rejected as exc:
            raise ConfigError(str(exc)) from exc
        print(f"届出受付 {args.decide}: {args.decision}", file=sys.stderr)
        return 0
    print(json.dumps(intakes(tenant), ensure_ascii=False))
    return 0


def hub_restrict(args: argparse.Namespace) -> int:
    hub = _hub(args)
    if args.lift:
        hub.lift_restriction(args.lg_code, args.lift)
        print(f"restriction {args.lift} lifted", file=sys.stderr)
        return 0
    if not (args.person or args.household):
        raise ConfigError("name --person or --household (or --lift ID)")
    rid = hub.restrict(args.lg_code, args.kind, atena_no=args.person, household_no=args.household)
    print(rid)
    return 0


def hub_prune(args: argparse.Namespace) -> int:
    hub = _hub(args)
    kept = hub.store.tenant(args.lg_code).prune(args.before)
    print(f"change log of {args.lg_code} now starts at {kept}", file=sys.stderr)
    return 0


# ---------------------------------------------------------------- node


def _syncer(args: argparse.Namespace, client: Any = None, **flags: Any) -> Any:
    from edgenode.sync.nodeconfig import load_node_settings
    from edgenode.sync.syncer import Syncer

    data = Path(args.data)
    return Syncer(data, load_node_settings(data, flags=flags), client)


def node_init(args: argparse.Namespace) -> int:
    from edgenode.sync.nodeconfig import hub_key_fingerprint, init_node

    s = init_node(Path(args.data), args.hub, args.token, args.node, args.lg_code, args.hub_key)
    print(
        f"node {s['node_id']} of {s['lg_code']} ready; hub key {hub_key_fingerprint(s['hub_public_key'])}",
        file=sys.stderr,
    )
    return 0


def node_sync(args: argparse.Namespace) -> int:
    if not args.once:
        raise ConfigError("use `node sync --once` (or `node serve` to keep following)")
    syncer = _syncer(args, bandwidth_limit=args.bandwidth_limit)
    try:
        st = syncer.sync_once()
    finally:
        syncer.close()
    print(f"in sync at sequence {st['cursor']} (hub head {st['hub_head']})", file=sys.stderr)
    return 0


def node_status(args: argparse.Namespace) -> int:
    from edgenode.sync.nodeconfig import load_node_settings
    from edgenode.sync.statustext import status_text
    from edgenode.sync.syncer import node_status as status

    data = Path(args.data)
    settings = load_node_settings(data)
    st = status(data, settings)
    if args.json:
        print(json.dumps(st, ensure_ascii=False, sort_keys=True))
    else:
        print(status_text(data, settings, st))
    return 0


def node_verify(args: argparse.Namespace) -> int:
    syncer = _syncer(args)
    try:
        r = syncer.verify(repair=not args.no_repair)
    finally:
        syncer.close()
    if r.identical:
        print(f"identical to the hub at sequence {r.seq}", file=sys.stderr)
        return 0
    what = "re-bootstrapped" if r.rebootstrapped else f"repaired {r.repaired_rows} rows"
    print(
        f"DIFFERED from the hub at sequence {r.seq} in {len(r.differing)} bucket(s): {r.differing[:20]}"
        + ("" if args.no_repair else f"; {what}"),
        file=sys.stderr,
    )
    return 1


def node_export(args: argparse.Namespace) -> int:
    from edgenode import registry
    from edgenode.sync.replica import Replica

    out = sys.stdout.buffer
    with Replica(Path(args.data) / "replica").session() as conn:
        conn.execute("BEGIN")
        for line in registry.export_lines(conn):
            out.write(line.encode("utf-8") + b"\n")
        conn.execute("COMMIT")
    out.flush()
    return 0


def node_bootstrap(args: argparse.Namespace) -> int:
    from edgenode.sync.client import DirectoryFeedClient

    src = Path(args.source)
    if not src.exists():
        raise ConfigError(f"no such file or folder: {src}")
    syncer = _syncer(args)
    seq = syncer.bootstrap(DirectoryFeedClient(src))
    print(f"bootstrapped from {src.name} at sequence {seq}", file=sys.stderr)
    return 0


def node_serve(args: argparse.Namespace) -> int:
    from edgenode import serving
    from edgenode.config_watch import ConfigReloader, LiveSettings, apply_log_level
    from edgenode.counter_ui.app import create_app
    from edgenode.sdnotify import Notifier
    from edgenode.sync.inbox import Inbox, inbox_folder
    from edgenode.sync.mode import WanMonitor
    from edgenode.sync.nodeconfig import load_node_settings
    from edgenode.sync.syncer import Syncer
    from edgenode.watch import watch_node

    data = Path(args.data)
    flags = {"host": args.host, "port": args.port}
    s = LiveSettings(load_node_settings(data, flags=flags))
    apply_log_level(s, args.verbose)
    notifier = Notifier.from_environ(os.environ)
    syncer = Syncer(data, s)
    notifier.status("preparing the search index")
    syncer.replica.ensure_search_index()
    syncer.state.update(serving_pid=os.getpid())
    # systemd's watchdog watches the sync loop: a hung loop (not a down hub) gets the node restarted
    syncer.alive = notifier.watchdog
    inbox = Inbox(inbox_folder(data, s["inbox_dir"]), syncer)
    if not s["inbox_dir"]:
        inbox.ensure()  # a folder of its own (a USB mount point is left for the system to make)

    def retune() -> None:
        syncer.retune()
        apply_log_level(s, args.verbose)

    reloader = ConfigReloader(
        data, s, env=os.environ, flags=flags, state=syncer.state, audit=syncer.audit, on_change=retune, settle=0.5
    )
    stop = threading.Event()
    follower = threading.Thread(target=syncer.run, args=(stop,), name="sync", daemon=True)
    follower.start()
    monitor = WanMonitor(syncer.mode, s["hub_url"])
    threading.Thread(target=monitor.run, args=(stop,), name="wan-monitor", daemon=True).start()
    threading.Thread(target=watch_node, args=(stop, data, inbox, reloader), name="watch", daemon=True).start()
    log.info("node serving on http://%s:%d; inbox %s", s["host"], s["port"], inbox.folder)
    # serving.serve ends with a normal return on SIGTERM, so the threads below stop in order
    # (the backup's litestream syncs what it holds)
    backup = _backup_thread(data, syncer.settings, stop)
    try:
        # READY=1 once the counter UI listens: it never waits for the hub (the UI exists for when
        # the hub cannot be reached)
        serving.serve(
            create_app(data, s, wake=syncer.wake.set),
            s["host"],
            s["port"],
            notifier,
            f"counter UI on {s['host']}:{s['port']}",
            log_level="warning",
            timeout_graceful_shutdown=3,
        )
    finally:
        stop.set()
        follower.join(timeout=2)  # a long-poll in flight ends with the process; its writes are transactional
        if backup is not None:
            backup.join(timeout=20)  # litestream syncs what it holds before it exits
        syncer.state.update(serving_pid=None)
        syncer.close()
    return 0


def _backup_thread(data: Path, settings: Any, stop: threading.Event) -> threading.Thread | None:
    """Start the backup supervisor in a thread when backup is configured and `node serve` runs it."""
    from edgenode.backup.config import target
    from edgenode.backup.supervisor import Supervisor

    if not settings["backup_in_serve"] or target(settings) is None:
        return None
    supervisor = Supervisor(data, settings)

    def run() -> None:
        try:
            supervisor.run(stop)
        except ConfigError as exc:
            log.error("backup: %s", exc)

    t = threading.Thread(target=run, name="backup", daemon=True)
    t.start()
    return t


def node_backup(args: argparse.Namespace) -> int:
    import signal

    from edgenode.backup.supervisor import Supervisor
    from edgenode.sync.nodeconfig import load_node_settings

    data = Path(args.data)
    supervisor = Supervisor(data, load_node_settings(data))
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    log.info("backup: supervising litestream for %s -> %s", data, supervisor.target.where)
    supervisor.run(stop)
    return 0


def node_restore(args: argparse.Namespace) -> int:
    from edgenode.backup.restore import restore

    report = restore(Path(args.data), Path(args.to), args.timestamp, backup_path=args.backup_path)
    print(json.dumps(report, ensure_ascii=False, sort_keys=True))
    point = report.get("backup_point") or {}
    say = [f"restored into {args.to}: backup point item {point.get('last_item')} at {point.get('last_item_at')}"]
    rec = report.get("reconcile") or {}
    for lost in rec.get("possibly_lost") or []:
        serials = ", ".join(lost["serials"]) or "-"
        say.append(
            f"  POSSIBLY LOST locally (newer than the backup; the hub has it): item {lost['seq']} {lost['kind']}"
            f" {lost['created_at']} 発行番号 {serials}"
        )
    if rec:
        say.append(f"  queue: {rec['marked']} taken from the hub's ledger, {rec['still_pending']} still to upload")
    say.append(f"  発行番号 counter now {report['serial_counter']['now']}")
    if report["proven"]:
        say.append(f"  PROVEN: files intact, digest identical to the hub at sequence {report['digest']['seq']}")
    else:
        why = report.get("hub_error") or ("files damaged" if not report["files_ok"] else "digest differs")
        say.append(f"  NOT PROVEN: {why}")
    print("\n".join(say), file=sys.stderr)
    return 0 if report["proven"] else (3 if report.get("hub_unreachable") else 1)


def node_issue(args: argparse.Namespace) -> int:
    from edgenode.certs.model import CertRequest
    from edgenode.issuance import IssuanceService
    from edgenode.sync.nodeconfig import load_node_settings

    data = Path(args.data)
    service = IssuanceService(data, load_node_settings(data))
    kind, _, scope = args.kind.partition("/")
    request = CertRequest(
        kind=kind,
        scope=scope or "世帯全員",
        layout=args.layout,
        requester=args.requester,
        persons=tuple(args.include or ()),
        omissions=frozenset(args.omit) if args.omit is not None else None,
        copies=args.copies,
        purpose=args.purpose or "",
        id_document=args.id_document,
    )
    issued = service.issue(args.person, request, args.clerk)
    out = Path(args.output)
    out.write_bytes(issued.pdf)
    print(f"issued {issued.pages} page(s), fee {issued.fee} yen: {', '.join(issued.serials)} -> {out}", file=sys.stderr)
    return 0


def node_audit_verify(args: argparse.Namespace) -> int:
    from edgenode.audit import AuditLog

    data = Path(args.data)
    if not (data / "node.toml").exists():
        raise ConfigError(f"no node in {data}")
    n, problem = AuditLog(data / "node.db").verify()
    if problem is None:
        print(f"audit log intact: {n} entries", file=sys.stderr)
        return 0
    print(f"audit log BROKEN at entry {problem.seq}: {problem.reason}", file=sys.stderr)
    return 1


def user_add(args: argparse.Namespace) -> int:
    data = Path(args.data)
    password = _read_password()
    if (data / "hub.db").exists() or (data / "hub.toml").exists():
        if not args.lg_code:
            from edgenode.hub.staff import add_operator

            add_operator(data, args.name, args.role, password)
            print(f"datacenter operator {args.name} ({args.role}) added; signs in at /staff", file=sys.stderr)
            return 0
        _hub(args).add_user(args.lg_code, args.name, args.role, password)
        print(f"account {args.name} ({args.role}) added to {args.lg_code}; it syncs to the nodes", file=sys.stderr)
    elif (data / "node.toml").exists():
        from edgenode.sync.nodeconfig import add_local_user

        add_local_user(data, args.name, args.role, password)
        print(f"local emergency account {args.name} ({args.role}) added", file=sys.stderr)
    else:
        raise ConfigError(f"{data} holds neither a hub nor a node")
    return 0


def demo(args: argparse.Namespace) -> int:
    from edgenode.demo import run_demo

    return run_demo(args)


# ---------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand (also used to test that the docs list them)."""
    p = argparse.ArgumentParser(prog="edgenode", description="Offline-capable resident-registry node.")
    p.add_argument("--version", action="version", version=f"edgenode {__version__}")
    p.add_argument("-v", "--verbose", action="store_true", help="log debug detail to stderr")
    p.add_argument(
        "--log-format",
        choices=["auto", "json", "text"],
        default="auto",
        help="auto: JSON under systemd, text on a terminal",
    )
    sub = p.add_subparsers(dest="cmd", required=True)

    def cmd(
        parent: Any, name: str, fn: Callable[[argparse.Namespace], int], help: str, data: bool = True
    ) -> argparse.ArgumentParser:
        sp: argparse.ArgumentParser = parent.add_parser(name, help=help, description=help)
        if data:
            sp.add_argument("--data", required=True, help="state folder (SQLite files, config, keys)")
        sp.set_defaults(fn=fn)
        return sp

    d = cmd(sub, "demo", demo, "hub + node + simulator on one machine with a synthetic town", data=False)
    d.add_argument("--data", help="folder to keep the demo in (default: a temporary folder)")
    d.add_argument("--residents", type=int, default=18800, help="synthetic residents (default 18,800)")
    d.add_argument("--port", type=int, default=8800, help="node UI port")
    d.add_argument("--hub-port", type=int, default=8700, help="hub port")
    d.add_argument("--interval", type=float, default=5.0, help="seconds between simulated change bursts")

    hub = sub.add_parser("hub", help="the datacenter side").add_subparsers(dest="hub_cmd", required=True)
    c = cmd(hub, "init", hub_init, "create the hub if new and add a municipality")
    c.add_argument("--lg-code", required=True, help="6-digit 全国地方公共団体コード")
    c.add_argument("--name", required=True, help="municipality name, e.g. 門川町")
    c.add_argument("--residents", type=int, default=0, help="synthetic residents to create")
    c.add_argument("--seed", type=int, default=0, help="seed of the synthetic population")
    c.add_argument("--db", default="", help="store URL (default: SQLite under --data)")
    c = cmd(hub, "serve", hub_serve, "serve the hub API and fleet view")
    c.add_argument("--host", help="listen address")
    c.add_argument("--port", type=int, help="listen port")
    c = cmd(hub, "simulate", hub_simulate, "apply N realistic registry changes")
    c.add_argument("--lg-code", required=True, help="municipality")
    c.add_argument("--changes", type=int, required=True, help="number of changes")
    c.add_argument("--seed", type=int, help="random seed")
    c = cmd(hub, "token", hub_token, "print a new node token")
    c.add_argument("--lg-code", required=True, help="municipality the token is bound to")
    c.add_argument("--node", required=True, help="node id the token is bound to")
    c = cmd(hub, "export", hub_export, "current registry as canonical NDJSON on stdout")
    c.add_argument("--lg-code", required=True, help="municipality")
    c = cmd(hub, "apply", hub_apply, "ingest records in the export format (all or nothing)")
    c.add_argument("--lg-code", required=True, help="municipality")
    c.add_argument("file", help="NDJSON file in the export format")
    c = cmd(hub, "snapshot", hub_snapshot, "write a signed snapshot file (physical media)")
    c.add_argument("--lg-code", required=True, help="municipality")
    c.add_argument("--out", required=True, help="file to write")
    cmd(hub, "migrate", hub_migrate, "create or upgrade the hub schema (idempotent)")
    c = cmd(hub, "issuances", hub_issuances, "issuance records received from nodes, with reconciliation findings")
    c.add_argument("--lg-code", required=True, help="municipality")
    c.add_argument("--json", action="store_true", help="print JSON (each record with findings and 本人通知 flag)")
    c.add_argument("--csv", action="store_true", help="print CSV for the registry system's import")
    c.add_argument("--totals", action="store_true", help="per node and day: count, copies, fees")
    c = cmd(hub, "intakes", hub_intakes, "届出受付 received from nodes (JSON), or --decide one with a note")
    c.add_argument("--lg-code", required=True, help="municipality")
    c.add_argument("--decide", help="id of the 届出受付 to decide")
    c.add_argument("--decision", choices=["accept", "reject"], help="accept (keyed in) or reject")
    c.add_argument("--note", help="why (required with --decide)")
    c.add_argument("--by", help="who decides (recorded)")
    c = cmd(hub, "restrict", hub_restrict, "set (or --lift) a 支援措置 / 抑止 on a person or household")
    c.add_argument("--lg-code", required=True, help="municipality")
    c.add_argument("--kind", default="支援措置", choices=["支援措置", "仮支援措置", "抑止"], help="kind")
    c.add_argument("--person", help="宛名番号")
    c.add_argument("--household", help="世帯番号")
    c.add_argument("--lift", help="remove the restriction with this id")
    c = cmd(hub, "prune", hub_prune, "drop change-log entries before a sequence (nodes behind re-bootstrap)")
    c.add_argument("--lg-code", required=True, help="municipality")
    c.add_argument("--before", type=int, required=True, help="first sequence to keep")

    node = sub.add_parser("node", help="the town-hall side").add_subparsers(dest="node_cmd", required=True)
    c = cmd(node, "init", node_init, "create a node bound to a hub and a token")
    c.add_argument("--hub", required=True, help="hub URL")
    c.add_argument("--token", required=True, help="token from `edgenode hub token`")
    c.add_argument("--node", required=True, help="this node's id")
    c.add_argument("--lg-code", help="municipality (only needed with --hub-key)")
    c.add_argument("--hub-key", help="pin this hub public key instead of asking the hub (offline init)")
    c = cmd(node, "serve", node_serve, "follow the hub and serve the node's pages")
    c.add_argument("--host", help="listen address")
    c.add_argument("--port", type=int, help="listen port")
    c = cmd(node, "sync", node_sync, "bootstrap if needed, pull until caught up, then exit")
    c.add_argument("--once", action="store_true", help="run one round and exit (required)")
    c.add_argument("--bandwidth-limit", type=int, help="cap received bytes/s for this run")
    c = cmd(node, "status", node_status, "mode, cursor, hub head, lag, last sync and error")
    c.add_argument("--json", action="store_true", help="print JSON")
    c = cmd(node, "verify", node_verify, "compare digests with the hub; exit 0 only if identical")
    c.add_argument("--no-repair", action="store_true", help="only compare, do not repair")
    cmd(node, "export", node_export, "the replica's current registry as canonical NDJSON")
    cmd(node, "backup", node_backup, "run the continuous backup (Litestream) in the foreground, for systemd")
    c = cmd(node, "restore", node_restore, "restore the node from its backup into a new folder and prove it")
    c.add_argument("--to", required=True, help="new, empty folder to restore into (the live folder is not touched)")
    c.add_argument("--timestamp", help="restore the state as of this UTC time (e.g. 2026-11-27T03:00:00Z)")
    c.add_argument("--backup-path", help="the backup folder, when --data is gone with its node.toml")
    c = cmd(node, "bootstrap", node_bootstrap, "bootstrap from a snapshot file (physical media)")
    c.add_argument("--from", dest="source", required=True, help="snapshot file or folder of them")

    c = cmd(node, "issue", node_issue, "issue a certificate from the command line (same path as the counter UI)")
    c.add_argument("--person", required=True, help="宛名番号 of the person asking (or the subject)")
    c.add_argument(
        "--kind", required=True, help="住民票の写し[/世帯全員|/世帯の一部], 住民票記載事項証明書, 住民票の除票の写し"
    )
    c.add_argument("--clerk", required=True, help="the clerk issuing it (recorded)")
    c.add_argument("-o", "--output", required=True, help="PDF file to write")
    c.add_argument("--layout", default="世帯連記式", help="世帯連記式 or 個人票")
    c.add_argument("--requester", default="本人", help="本人, 同一世帯, 代理人, 第三者 or 公用")
    c.add_argument("--include", action="append", help="宛名番号 to print (世帯の一部); repeat")
    c.add_argument("--omit", action="append", help="item to omit (default: the legal default omissions); repeat")
    c.add_argument("--copies", type=int, default=1, help="number of copies")
    c.add_argument("--purpose", help="請求事由")
    c.add_argument("--id-document", default="マイナンバーカード", help="本人確認書類")
    audit = node.add_parser("audit", help="the node's audit log").add_subparsers(dest="audit_cmd", required=True)
    cmd(audit, "verify", node_audit_verify, "check the audit log's hash chain; exit 0 only if intact")

    user = sub.add_parser("user", help="staff accounts").add_subparsers(dest="user_cmd", required=True)
    c = cmd(user, "add", user_add, "add an account; the password is read from standard input")
    c.add_argument("--name", required=True, help="user name")
    c.add_argument("--role", required=True, choices=["clerk", "supervisor", "admin"], help="role")
    c.add_argument("--lg-code", help="municipality (on a hub)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code."""
    args = build_parser().parse_args(argv)
    from edgenode import logs

    logs.setup(args.verbose, args.log_format)
    try:
        return int(args.fn(args))
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # the reader of our stdout went away (e.g. `| head`): not an error of ours
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except ConfigError as exc:
        print(f"edgenode: {exc}", file=sys.stderr)
        return 2
    except HubUnreachable as exc:
        print(f"edgenode: {exc}\n  hint: {exc.hint}", file=sys.stderr)
        return 3
    except EdgenodeError as exc:
        hint = getattr(exc, "hint", "")
        print(f"edgenode: {exc}" + (f"\n  hint: {hint}" if hint else ""), file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
