"""Presenting a resolved Config: rows of key, value, source, with secrets masked."""

from __future__ import annotations

from typing import Any

from edgeforge_ext.config import Config
from edgeforge_ext.secrets import MASK
from edgeforge_ext.settings import (
    ENV_ATTEST_KEY_PASSWORD,
    ENV_EDGE_HOST_TOKEN,
    ENV_REGISTRY_PASSWORD,
    ENV_UBUNTU_PRO_KEY,
    KEYS,
)


def config_rows(config: Config) -> dict[str, Any]:
    """JSON form: {"config_file", "values": {key: {"value", "source"}}, "secrets": {...}}."""
    values = {k.name: {"value": config.values[k.name], "source": config.sources[k.name]} for k in KEYS}
    secrets = {
        "registry.password": _secret_row(config.registry_password, ENV_REGISTRY_PASSWORD),
        "site.edge_host_token": _secret_row(config.edge_host_token, ENV_EDGE_HOST_TOKEN),
        "build.ubuntu_pro_key": _secret_row(config.ubuntu_pro_key, ENV_UBUNTU_PRO_KEY),
        "attest.key": _secret_row(config.attest_key, ""),
        "attest.key_password": _secret_row(config.attest_key_password, ENV_ATTEST_KEY_PASSWORD),
    }
    for entry in config.registries:
        secrets[f"registry.registries[{entry.domain}].password"] = _secret_row(entry.password, "")
    return {
        "config_file": str(config.config_file) if config.config_file else None,
        "variant": config.variant,
        "values": values,
        "secrets": secrets,
        "variants": [v.name for v in config.variants],
    }


def _secret_row(secret: Any, env_name: str) -> dict[str, Any]:
    if not secret:
        return {"value": None, "source": f"not set (use {env_name} or a file)" if env_name else "not set"}
    return {"value": MASK, "source": secret.source}


def print_config(config: Config) -> None:
    from rich.table import Table

    from edgeforge_ext import console

    rows = config_rows(config)
    table = Table(title="edgeforge-ext configuration", show_lines=False)
    table.add_column("key")
    table.add_column("value")
    table.add_column("source")
    for name, row in rows["values"].items():
        table.add_row(name, _show(row["value"]), row["source"], style=None if row["source"] == "default" else "bold")
    for name, row in rows["secrets"].items():
        table.add_row(name, row["value"] or "-", row["source"])
    console.err().print(table)


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value) if value else "[]"
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in value.items()) if value else "{}"
    return str(value) if value != "" else '""'
