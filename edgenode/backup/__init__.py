"""Continuous backup of the node's SQLite files with Litestream, and restoring from it.

`config` turns the node's settings into a Litestream configuration, `supervisor` runs and
watches ``litestream replicate``, `status` reads what the supervisor observed (for `node status`,
/admin and /metrics), `restore` rebuilds a data folder from the backup and reconciles it with the hub.
"""
