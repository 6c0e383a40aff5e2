"""The OpenAPI description of /api/v1/: the hashtag security scheme and the documented errors.

drf-spectacular reads the views and serializers; these hooks add what it cannot see: that every
operation may answer the JSON error body of ``gsafollowup.http.json_error``, with which codes.
"""

from drf_spectacular.extensions import OpenApiAuthenticationExtension

from gsafollowup.errors import error_codes

API_PREFIX = "/api/v1/"
#: Errors any operation may answer: bad parameters, authentication, permission, missing objects,
#: content negotiation, throttling, and a database that is down.
COMMON_ERRORS = (400, 401, 403, 404, 405, 406, 429, 503)
#: Errors only requests with a body may answer.
WRITE_ERRORS = (409, 413, 415, 422)
ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "string", "enum": list(error_codes())},
                "message": {"type": "string", "description": "One line for a human."},
                "existing_id": {
                    "type": "integer",
                    "description": "With code duplicate: the id of the object that exists already.",
                },
            },
        }
    },
}


class HashtagScheme(OpenApiAuthenticationExtension):
    """``Authorization: Hashtag <value>``, described as an API key in that header."""

    target_class = "observers.auth.HashtagAuthentication"
    name = "hashtag"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "The observatory's hashtag, sent as `Authorization: Hashtag <value>`.",
        }


def only_api_v1(endpoints, **kwargs):
    """Describe /api/v1/ once: not the legacy routes, and not the /followup/ copies."""
    return [endpoint for endpoint in endpoints if endpoint[0].startswith(API_PREFIX)]


def _error_response(status: int) -> dict:
    codes = [code for code, http in error_codes().items() if http == status]
    response = {
        "description": f"Error ({', '.join(codes)})",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }
    if status == 401:
        response["headers"] = {"WWW-Authenticate": {"schema": {"type": "string"}}}
    if status == 429:
        response["headers"] = {
            "Retry-After": {"schema": {"type": "integer"}, "description": "Seconds to wait."}
        }
    return response


def add_error_responses(result, generator, request, public):
    """Add the Error component and the error responses each operation can give."""
    result.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
    for item in result.get("paths", {}).values():
        for method, operation in item.items():
            if method not in ("get", "post", "put", "patch", "delete"):
                continue
            statuses = COMMON_ERRORS + (WRITE_ERRORS if method in ("post", "put", "patch") else ())
            responses = operation.setdefault("responses", {})
            for status in statuses:
                responses.setdefault(str(status), _error_response(status))
    return result
