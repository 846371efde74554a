"""The sidebar of every page, admin and portal alike (django-unfold's ``UNFOLD["SIDEBAR"]``).

Each user sees the areas their roles let them use, so that every area is one click from any page; the one the
page belongs to is marked (``aria-current="page"`` in templates/unfold/helpers/app_list.html). Admin areas are
listed for staff only: nobody else may open the admin.
"""

from __future__ import annotations

from django.templatetags.static import static
from django.urls import reverse

from apps.core.choices import Role
from apps.core.permissions import has_role

# Who may open each portal area, as its views decide (core imports no app, so the roles are named here).
COMPLIANCE_ROLES = (Role.ADMIN, Role.COMPLIANCE)  # apps.compliance.selectors
BACKUP_READER_ROLES = (Role.ADMIN, Role.COMPLIANCE)  # apps.backups.views
REGISTRY_READER_ROLES = tuple(Role)  # apps.registry.views: every role reads


def _item(title: str, icon: str, link: str, active: bool) -> dict:
    return {"title": title, "icon": icon, "link": link, "active": active}


def _under(request, url: str) -> bool:
    return request.path.startswith(url)


def _admin_item(request, title: str, icon: str, model: str) -> dict | None:
    """A link to a model's admin list, for staff who may view that model; marked on the whole app's pages."""
    app_label, model_name = model.split(".")
    user = request.user
    if not (user.is_staff and user.has_perm(f"{app_label}.view_{model_name}")):
        return None
    link = reverse(f"admin:{app_label}_{model_name}_changelist")
    return _item(title, icon, link, _under(request, reverse("admin:app_list", args=[app_label])))


def _quantum_item(request) -> dict | None:
    user = request.user
    if not user.has_perm("quantum.view_quantumjob"):
        return None
    if user.is_staff:
        return _admin_item(request, "Quantum jobs", "memory", "quantum.quantumjob")
    # Without the admin, the dashboard's list is where one's jobs are.
    return _item("Quantum jobs", "memory", reverse("dashboard:index") + "#recent-jobs", False)


def _page_item(request, title: str, icon: str, url_name: str, roles) -> dict | None:
    """A portal area's link, for holders of the roles its views admit; marked on all of its pages."""
    if not has_role(request.user, *roles):
        return None
    link = reverse(url_name)
    return _item(title, icon, link, _under(request, link))


def _groups(request) -> list[tuple[str, list[dict | None]]]:
    user = request.user
    dashboard, system, workers, account, api_docs, admin_index = (
        reverse(name)
        for name in ("dashboard:index", "system", "workers_page:index", "account", "api-docs", "admin:index")
    )
    return [
        (
            "Work",
            [
                _item("Dashboard", "dashboard", dashboard, _under(request, dashboard)),
                _quantum_item(request),
                _page_item(request, "Registry", "model_training", "registry_page:index", REGISTRY_READER_ROLES),
            ],
        ),
        (
            "Operations",
            [
                _page_item(request, "Backups", "backup", "backups_page:index", BACKUP_READER_ROLES),
                _page_item(request, "Compliance", "verified_user", "compliance_page:index", COMPLIANCE_ROLES),
                _item("System", "monitor_heart", system, request.path == system) if user.is_staff else None,
                _item("Workers", "dns", workers, _under(request, workers)) if user.is_staff else None,
                _admin_item(request, "Audit", "policy", "audit.auditevent"),
                _item("Administration", "admin_panel_settings", admin_index, request.path == admin_index)
                if user.is_staff
                else None,
            ],
        ),
        (
            "You",
            [
                _item("Account", "person", account, _under(request, account)),
                _item("API docs", "api", api_docs, _under(request, api_docs)),
            ],
        ),
    ]


def sidebar(request) -> list[dict]:
    """The navigation groups for this request's user (empty for someone not signed in)."""
    if not request.user.is_authenticated:
        return []
    groups = []
    for title, items in _groups(request):
        allowed = [item for item in items if item is not None]
        if allowed:
            groups.append({"title": title, "items": allowed})
    return groups


def show_all_applications(request) -> bool:
    """Staff also get unfold's list of every admin model (users, roles, schedules...)."""
    return request.user.is_staff


def account_links(request) -> list[dict]:
    return [{"title": "Account", "link": reverse("account")}]


def favicon_url(request) -> str:
    return static("favicon.svg")


def format_script_url(request) -> str:
    """The script every page loads: date-times in the viewer's zone, numbers and plurals as the server writes them."""
    return static("js/format.js")
