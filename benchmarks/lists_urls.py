"""The portal's URLs plus the list benchmark's baseline: the same page as a bare ``.values()`` JsonResponse.

No DRF, serializer, authentication, permission, filterset or paginator: the rows the API's page shows, read
with the same filter and order, is the floor an API list can be compared with.
"""

import json

from django.apps import apps
from django.http import JsonResponse
from django.urls import include, path


def bare_page(request):
    """``?model=app.Model&filter={orm lookups as JSON}&order=-created_at,-id&fields=id,name&size=50``."""
    model = apps.get_model(request.GET["model"])
    rows = model.objects.filter(**json.loads(request.GET["filter"])).order_by(*request.GET["order"].split(","))
    fields = request.GET["fields"].split(",")
    return JsonResponse({"results": list(rows.values(*fields)[: int(request.GET["size"])])})


urlpatterns = [
    path("bench/bare-page/", bare_page),
    path("", include("project.urls")),
]
