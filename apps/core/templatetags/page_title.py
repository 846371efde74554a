"""The page's title, written once in its template's ``page_title`` block, shown in the tab and in the header."""

from django import template
from django.template.loader_tags import BLOCK_CONTEXT_KEY

register = template.Library()


@register.simple_tag(takes_context=True)
def page_title(context) -> str:
    """The ``page_title`` block of the page being rendered (see templates/base.html); "" when it has none.

    The shell's header is an include, which cannot see the page's blocks: the layout renders the block here and
    hands the text to the header.
    """
    blocks = context.render_context.get(BLOCK_CONTEXT_KEY)
    block = blocks.get_block("page_title") if blocks else None
    return block.nodelist.render(context).strip() if block else ""
