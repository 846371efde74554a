"""Upload size limits enforced while the request body arrives, not after it is on disk."""

from django.conf import settings
from django.core.files.uploadhandler import FileUploadHandler

from .errors import PayloadTooLarge

MIB = 1024 * 1024


class UploadLimit(FileUploadHandler):
    """Refuses an upload over a size limit as soon as that is known.

    From the declared Content-Length, before a byte of the body is read; without one (chunked requests), as soon as
    the bytes received pass the limit, instead of spooling gigabytes to disk for the service to refuse.
    """

    # Room for the multipart boundaries and the small form fields next to the file.
    MULTIPART_ALLOWANCE = 64 * 1024

    def __init__(self, request, *, setting: str):
        super().__init__(request)
        self.limit_mb = getattr(settings, setting)
        self.received = 0

    def _refuse(self, size: str = ""):
        raise PayloadTooLarge(f"The upload{size} is larger than the limit of {self.limit_mb:,} MB.")

    def handle_raw_input(self, input_data, META, content_length, boundary, encoding=None):
        if content_length > self.limit_mb * MIB + self.MULTIPART_ALLOWANCE:
            self._refuse(f" ({content_length:,} bytes)")

    def receive_data_chunk(self, raw_data, start):
        self.received += len(raw_data)
        if self.received > self.limit_mb * MIB:
            self._refuse()
        return raw_data

    def file_complete(self, file_size):
        return None


class UploadLimitMixin:
    """Installs UploadLimit for the actions in ``upload_limits`` (action → setting in MB)."""

    upload_limits: dict[str, str] = {}

    def initial(self, request, *args, **kwargs):
        # Before authentication: session authentication's CSRF check already parses the body.
        if setting := self.upload_limits.get(self.action):
            request.upload_handlers.insert(0, UploadLimit(request, setting=setting))
        super().initial(request, *args, **kwargs)
