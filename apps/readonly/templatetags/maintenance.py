"""The maintenance banner on every page (portal shell, sign-in pages and admin)."""

import logging

from django import template

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
