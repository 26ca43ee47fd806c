"""Experiment tracking defaults: wandb keeps its own default mode (online) wherever it has credentials; where it
has none, ``unlearn`` runs it offline instead of letting it stop at a login prompt, and says so in one line."""

from __future__ import annotations

import netrc
import os
from collections.abc import MutableMapping
from pathlib import Path
from urllib.parse import urlparse

#: wandb's API host unless WANDB_BASE_URL names another (wandb/sdk/lib/apikey.py reads netrc for that host)
DEFAULT_WANDB_HOST = "api.wandb.ai"


def _netrc_has(host: str, environ: MutableMapping[str, str]) -> bool:
    """Whether the netrc file wandb reads (``$NETRC``, else ``~/.netrc``; ``wandb login`` writes it) has a
    password for ``host``."""
    home = environ.get("HOME") or str(Path.home())
    for name in (environ.get("NETRC"), os.path.join(home, ".netrc"), os.path.join(home, "_netrc")):
        if not name or not os.path.isfile(name):
            continue
        try:
            entry = netrc.netrc(name).authenticators(host)
        except (netrc.NetrcParseError, OSError):
            continue
        if entry and entry[2]:
            return True
    return False


def wandb_has_credentials(environ: MutableMapping[str, str] | None = None) -> bool:
    """``WANDB_API_KEY`` set, or a netrc entry for wandb's host (``wandb login``)."""
    environ = os.environ if environ is None else environ
    if environ.get("WANDB_API_KEY"):
        return True
    host = urlparse(environ.get("WANDB_BASE_URL") or f"https://{DEFAULT_WANDB_HOST}").hostname or DEFAULT_WANDB_HOST
    return _netrc_has(host, environ)


def offline_without_credentials(environ: MutableMapping[str, str] | None = None) -> str | None:
    """Set ``WANDB_MODE=offline`` when the user chose no mode and wandb has no credentials; returns the line
    that says so (``None`` when nothing was changed: wandb then follows its own default or the user's mode)."""
    environ = os.environ if environ is None else environ
    if environ.get("WANDB_MODE") or environ.get("WANDB_DISABLED") or wandb_has_credentials(environ):
        return None
    environ["WANDB_MODE"] = "offline"
    return (
        "unlearn: wandb has no credentials (WANDB_API_KEY or `wandb login`): it logs offline here; "
        "`wandb sync <run folder>/wandb/offline-run-*` uploads a run later"
    )
