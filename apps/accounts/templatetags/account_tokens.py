from django import template

from apps.accounts.models import ApiToken

register = template.Library()


@register.simple_tag
def tokens_of(user):
    """The user's API tokens, newest first, for the account page."""
    return list(ApiToken.objects.filter(owner=user).order_by("-created"))
