"""Words the desk templates translate from data (``_(edition.status.value)``): roles,
edition, delivery and subscriber statuses, review states. Listed here so that
``pybabel extract`` finds them; nothing imports this module at run time."""

from __future__ import annotations

from typing import Final

from newsletter.web.pages import N_

WORDS: Final = (
    # roles
    N_("admin"),
    N_("editor"),
    N_("translator"),
    # edition statuses
    N_("planned"),
    N_("awaiting_approval"),
    N_("sending"),
    N_("paused"),
    N_("finished"),
    N_("cancelled"),
    # delivery statuses
    N_("queued"),
    N_("claimed"),
    N_("sent"),
    N_("retry"),
    N_("failed"),
    N_("unknown"),
    N_("skipped"),
    # subscriber statuses
    N_("active"),
    N_("pending"),
    N_("unsubscribed"),
    N_("bounced"),
    N_("complained"),
    N_("erased"),
    # review states of a version
    N_("original"),
    N_("human"),
    N_("machine-translated"),
    N_("reviewed"),
)
