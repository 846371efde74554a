"""OpenAPI links: from each create operation to the operations on the object it created.

drf-spectacular emits no links, so clients (and Swagger UI) cannot tell from the schema that the `id` a
``POST /quantum/jobs/`` answers with is the `{id}` of ``GET /quantum/jobs/{id}/``; schema fuzzers cannot chain
requests either (``make fuzz`` runs schemathesis's stateful phase over these links). This postprocessing hook
derives the links from the paths, so a new viewset gets them without declaring anything.
"""

import re

PATH_PARAMETER = re.compile(r"{(\w+)}")
# Statuses with which a POST says it created something (202: created, work queued, e.g. compliance reports).
CREATED = ("201", "202")
# Where a created object's response carries the value of a path parameter, in order of preference: `ids` is a
# batch's list of new objects (the first one is linked), `version` a model version's `{number}`.
BODY_FIELDS = {"id": ("id", "ids/0"), "name": ("name",), "number": ("version",)}


def add_create_links(result: dict, generator, request, public) -> dict:
    """Add to every create operation's 201/202 response a link to each operation on the created object.

    A target is an operation below the create's collection whose every path parameter can be filled from the
    create request's own path or from its response body (see ``BODY_FIELDS``); others are left without a link.
    """
    paths, schemas = result["paths"], result.get("components", {}).get("schemas", {})
    operations = [(path, operation) for path, item in paths.items() for operation in item.values()]
    for path, item in paths.items():
        post = item.get("post")
        if post is None:
            continue
        collection = _collection(path, paths)
        for status in CREATED:
            response = post["responses"].get(status)
            fields = _body_fields(response, schemas) if response else set()
            links = {
                target["operationId"]: {"operationId": target["operationId"], "parameters": parameters}
                for target_path, target in operations
                if target_path.startswith(collection + "{")
                and (parameters := _parameters(target_path, path, fields)) is not None
            }
            if links:
                response["links"] = links
    return result


def _collection(path: str, paths: dict) -> str:
    """The collection a POST adds to: its own path, or its parent's for an action on a collection (``batch/``)."""
    if any(other.startswith(path + "{") for other in paths):
        return path
    return path.rstrip("/").rsplit("/", 1)[0] + "/"


def _body_fields(response: dict, schemas: dict) -> set[str]:
    """Top-level properties of the response's JSON body (a component reference, as drf-spectacular writes it)."""
    schema = response.get("content", {}).get("application/json", {}).get("schema", {})
    if "$ref" in schema:
        schema = schemas.get(schema["$ref"].rsplit("/", 1)[-1], {})
    return set(schema.get("properties", {}))


def _parameters(target_path: str, source_path: str, fields: set[str]) -> dict[str, str] | None:
    """Runtime expressions for the target's path parameters, or None when one of them cannot be filled."""
    source_parameters = set(PATH_PARAMETER.findall(source_path))
    parameters = {}
    for name in PATH_PARAMETER.findall(target_path):
        if name in source_parameters:
            parameters[name] = f"$request.path.{name}"
            continue
        field = next((f for f in BODY_FIELDS.get(name, ()) if f.split("/")[0] in fields), None)
        if field is None:
            return None
        parameters[name] = f"$response.body#/{field}"
    return parameters
