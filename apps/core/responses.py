"""Downloads that stream under the ASGI server too: files, and reads from the database."""

from __future__ import annotations

from asgiref.sync import sync_to_async
from django.http import FileResponse, StreamingHttpResponse


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


class DatabaseStreamingResponse(StreamingHttpResponse):
    """A ``StreamingHttpResponse`` of a sync iterator that reads the database (a server-side cursor, a COPY).

    Under ASGI each block is produced in the request's thread (thread-sensitive), where the cursor and its pooled
    connection live, as the client takes them: Django would otherwise read the whole iterator into a list first.
    Closing the response, which the server does after the end, a disconnect or an error (``apps.core.asgi``),
    closes the iterator in that same thread, then ``request_finished`` returns the connection to the pool.
    Served synchronously (the test client, WSGI), it is a plain ``StreamingHttpResponse``.
    """

    async def __aiter__(self):
        next_block = sync_to_async(next, thread_sensitive=True)
        blocks = self.streaming_content
        while (block := await next_block(blocks, None)) is not None:
            yield block
