"""The maintenance banner on every page (portal shell, sign-in pages and admin)."""

import logging

from django import template
from django.utils.text import slugify

from ..services import maintenance_mode_current

logger = logging.getLogger(__name__)
register = template.Library()


@register.inclusion_tag("readonly/banner.html")
def maintenance_banner() -> dict:
    """Maintenance mode while it is on, or the next window planned within a day; nothing otherwise."""
    try:
        status = maintenance_mode_current()
    except Exception:  # a banner never breaks a page (error pages render it too, whatever went wrong)
        logger.exception("the maintenance banner could not be shown")
        return {}
    return {"maintenance": status, "next_window": status.upcoming[0] if status.upcoming else None}


@register.inclusion_tag("readonly/_submit.html")
def paused_submit(label: str, button_id: str = "", css_class: str = "", note_id: str = "") -> dict:
    """A form's submit button, disabled while maintenance mode is on with a line saying until when changes are
    paused: the write would only meet the 503 page. One include for every create/submit form of the portal pages;
    sign-in, re-authentication and the maintenance switch never use it (they work during maintenance).

    ``note_id`` names the line (for ``aria-describedby``); by default it is derived from the label.
    """
    try:
        status = maintenance_mode_current()
    except Exception:  # a form never breaks a page; the middleware still refuses the write if it is on
        logger.exception("maintenance mode could not be read for a form's button")
        status = None
    paused = bool(status and status.active)
    return {
        "label": label,
        "button_id": button_id,
        "css_class": css_class,
        "paused": paused,
        "until": status.until if paused else None,
        "note_id": note_id or "paused-" + slugify(label),
    }
