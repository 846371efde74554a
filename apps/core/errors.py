"""The one base class for errors a user can cause, whichever door (API, admin, CLI) the request came through.

Services raise a subclass with a message that names the problem and the limit; the DRF exception handler
(``apps.core.api.errors``) turns any of them into the API's error body by ``status``, so no view translates errors
itself. The admin and the commands catch the app's subclass and show the message.
"""


class ApplicationError(Exception):
    """A refused request: ``status`` is the HTTP status that fits, ``field`` the input at fault (400 only).

    Subclasses set class-wide ``status`` and ``code`` defaults; a raise site may override them.
    """

    status: int = 400
    code: str | None = None

    def __init__(self, message: str, *, status: int | None = None, field: str | None = None, code: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field
        if status is not None:
            self.status = status
        if code is not None:
            self.code = code


class NotPermitted(ApplicationError, PermissionError):
    """The user's role or ownership does not allow the action (403).

    Still a ``PermissionError``, so that callers catching the built-in keep working.
    """

    status = 403
