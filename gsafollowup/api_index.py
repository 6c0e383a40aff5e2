"""GET /api/v1/: what the REST API offers, with links, instead of a bare 404."""

from drf_spectacular.utils import extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from gsafollowup.http import ApiMixin, url_under_prefix
from gsafollowup.site import version

#: The routes listed, by name, with what each answers.
ROUTES = (
    ("api-alerts", "alerts, newest first (paginated); POST creates one"),
    ("api-points", "calibrated follow-up points (paginated); POST uploads a catalog"),
    ("api-surveys", "reference surveys and their bands, with star counts"),
    ("api-observatory-me", "the observatory of the hashtag sent"),
    ("api-schema", "the OpenAPI 3 schema"),
    ("api-docs", "interactive documentation (Swagger UI)"),
    ("api-redoc", "reference documentation (ReDoc)"),
)


class ApiIndexView(ApiMixin, APIView):
    """The index of /api/v1/: every route with its URL and a line on what it answers."""

    authentication_classes = []
    permission_classes = []

    @extend_schema(exclude=True)  # a map of the schema's own routes, not an operation of it
    def get(self, request):
        routes = {
            name.removeprefix("api-"): {
                "url": request.build_absolute_uri(url_under_prefix(request, name)),
                "what": what,
            }
            for name, what in ROUTES
        }
        return Response(
            {
                "name": "gsafollowup REST API",
                "version": "1",
                "server_version": version(),
                "authentication": "Authorization: Hashtag <value>",
                "errors": '{"error": {"code": ..., "message": ...}}',
                "routes": routes,
            }
        )
