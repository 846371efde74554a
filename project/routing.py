"""Websocket routes of every app, mounted under /ws/."""

from apps.core.routing import websocket_urlpatterns as core_websockets
from apps.jobs.routing import websocket_urlpatterns as job_websockets

websocket_urlpatterns = [*core_websockets, *job_websockets]
