"""What every portal page's shell needs: the admin site's context, so that portal and admin share one look."""

from django.contrib import admin

SIGNED_IN_LAYOUT = "layouts/signed_in.html"
SIGNED_OUT_LAYOUT = "layouts/signed_out.html"


def shell(request) -> dict:
    """django-unfold's context (colours, site name, sidebar) for templates/base.html; admin views pass their own.

    The admin site lets in OTP-verified staff only, so its context has no navigation for anyone else: portal
    pages are open to every signed-in user, who gets the sidebar of the areas their roles may use.
    """
    match = request.resolver_match
    if match is not None and "admin" in match.namespaces:
        return {}
    if not hasattr(request, "user"):
        # An error page for a request that failed before the authentication middleware ran.
        return {"shell_template": SIGNED_OUT_LAYOUT}
    context = admin.site.each_context(request)
    signed_in = request.user.is_authenticated
    if signed_in and not context["has_permission"]:
        context.update(has_permission=True, sidebar_navigation=admin.site.get_sidebar_list(request))
    context["shell_template"] = SIGNED_IN_LAYOUT if signed_in else SIGNED_OUT_LAYOUT
    return context
