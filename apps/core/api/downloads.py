"""Content negotiation for file downloads."""

from rest_framework.negotiation import DefaultContentNegotiation


class DownloadNegotiation(DefaultContentNegotiation):
    """A download answers whatever the client accepts; its errors are JSON.

    Use with ``renderer_classes=[JSONRenderer]``: the file itself is a streamed response no renderer touches, so
    an ``Accept: text/csv`` must not turn the action's 404 or 409 into a 406.
    """

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type
