"""File downloads that stream under the ASGI server too."""

from __future__ import annotations

from asgiref.sync import sync_to_async
from django.http import FileResponse


class StreamedFileResponse(FileResponse):
    """A ``FileResponse`` that the ASGI server streams: chunks are read in a worker thread as the client takes them.

    Django serves a plain ``FileResponse`` under ASGI by first reading the whole file into a list, and backups and
    reports can be gigabytes. Served synchronously (the test client, WSGI), it is a plain ``FileResponse``.
    """

    block_size = 256 * 1024

    async def __aiter__(self):
        if self.file_to_stream is None:
            async for part in super().__aiter__():
                yield part
            return
        read = sync_to_async(self.file_to_stream.read, thread_sensitive=False)
        while chunk := await read(self.block_size):
            yield chunk
