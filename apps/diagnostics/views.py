"""The diagnostics bundle as a download for staff, inside the sudo window (a GET, so re-authenticating comes
straight back here)."""

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse
from django.views.decorators.http import require_safe

from apps.accounts.sudo import sudo_is_fresh, sudo_redirect

from .services import diagnostics_bundle_build


def bundle_response(bundle) -> HttpResponse:
    response = HttpResponse(bundle.content, content_type="application/zip")
    response["Content-Disposition"] = f'attachment; filename="{bundle.filename}"'
    response["Cache-Control"] = "no-store"
    return response


@login_required
@require_safe
def download(request):
    """Build and send the bundle (audited)."""
    if not request.user.is_staff:
        raise PermissionDenied("The diagnostics bundle is for staff members.")
    if not sudo_is_fresh(request):
        return sudo_redirect(request)
    return bundle_response(diagnostics_bundle_build(actor=request.user, via="page"))
