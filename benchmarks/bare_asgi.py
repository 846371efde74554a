"""The baseline for the HTTP benchmark: the smallest ASGI app, served by the same uvicorn."""


async def application(scope, receive, send):
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"ok\n"})
