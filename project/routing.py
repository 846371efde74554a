"""Websocket routes of every app, mounted under /ws/."""

from apps.core.routing import websocket_urlpatterns as core_websockets
from apps.quantum.routing import websocket_urlpatterns as quantum_websockets

websocket_urlpatterns = [*core_websockets, *quantum_websockets]
