"""Downloads (backups, reports, inference results) stream under the ASGI server instead of being read whole."""

import os
import warnings

from asgiref.sync import async_to_sync

from apps.core.responses import StreamedFileResponse


def _served_over_asgi(response) -> list[bytes]:
    async def parts():
        return [part async for part in response]

    with warnings.catch_warnings():
        # Django warns, then reads the whole file into memory, when a sync file iterator is served asynchronously.
        warnings.simplefilter("error")
        return async_to_sync(parts)()


def test_a_file_is_served_over_asgi_in_chunks_with_its_length_and_name(tmp_path):
    data = os.urandom(3 * StreamedFileResponse.block_size + 5)
    path = tmp_path / "backup.bin"
    path.write_bytes(data)

    response = StreamedFileResponse(path.open("rb"), as_attachment=True, filename="backup.bin")
    parts = _served_over_asgi(response)
    response.close()

    assert b"".join(parts) == data
    assert [len(part) for part in parts] == [StreamedFileResponse.block_size] * 3 + [5]
    assert response["Content-Length"] == str(len(data))
    assert response["Content-Disposition"] == 'attachment; filename="backup.bin"'


def test_the_same_response_still_serves_synchronously(tmp_path):
    path = tmp_path / "report.csv"
    path.write_bytes(b"a,b\n1,2\n")

    response = StreamedFileResponse(path.open("rb"), filename="report.csv")

    assert b"".join(response) == b"a,b\n1,2\n"
    response.close()
