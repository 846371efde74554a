"""The maintenance banner on every page (portal shell, sign-in pages and admin)."""

from django import template

from ..services import maintenance_mode_current

register = template.Library()


@register.inclusion_tag("readonly/banner.html")
def maintenance_banner() -> dict:
    """Maintenance mode while it is on, or the next window planned within a day; nothing otherwise."""
    status = maintenance_mode_current()
    return {"maintenance": status, "next_window": status.upcoming[0] if status.upcoming else None}
