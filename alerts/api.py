"""REST API for alerts: list (filters, cone, search), detail, create, light curve and its downloads."""

import math

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import generics, serializers
from rest_framework.permissions import IsAdminUser, IsAuthenticatedOrReadOnly
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.reverse import reverse

from gsafollowup.errors import BadInput, NotFound
from gsafollowup.http import ApiMixin

from .lightcurves import export_lightcurve, load_lightcurve, mjd_to_iso
from .models import Alert
from .selectors import angular_distance_deg, in_box, parse_cone, search_names
from .services import add_alias, create_alert

DOWNLOADS = {"csv": "text/csv", "ecsv": "text/plain", "votable": "application/x-votable+xml"}


def finite_or_none(value):
    """A float for JSON: NaN and infinities become null (strict JSON has no NaN)."""
    return value if value is None or math.isfinite(value) else None


class AlertSerializer(serializers.ModelSerializer):
    name = serializers.CharField(read_only=True, help_text="Last element of the IVORN")
    nfollowup = serializers.IntegerField(read_only=True, help_text="Visible follow-up points")
    lightcurve = serializers.SerializerMethodField(help_text="This alert's light curve in the API")
    aliases = serializers.SlugRelatedField(
        many=True, read_only=True, slug_field="name", help_text="Other names (TNS, Gaia, survey ids)"
    )

    class Meta:
        model = Alert
        fields = [
            "id",
            "ivorn",
            "name",
            "ra",
            "dec",
            "url",
            "published",
            "comment",
            "nfollowup",
            "lightcurve",
            "aliases",
        ]

    def get_lightcurve(self, alert) -> str:
        return reverse("api-alert-lightcurve", args=[alert.pk], request=self.context.get("request"))


class AlertCreateSerializer(serializers.Serializer):
    """A new alert; the service checks the values again and refuses an existing IVORN (409)."""

    ivorn = serializers.CharField(max_length=255, help_text="Unique name, e.g. ivo://Gaia/Gaia24abc")
    ra = serializers.FloatField(
        min_value=0.0,
        max_value=360.0,
        required=False,
        help_text="Degrees (ICRS); leave out for a TNS/Gaia name",
    )
    dec = serializers.FloatField(
        min_value=-90.0,
        max_value=90.0,
        required=False,
        help_text="Degrees (ICRS); leave out for a TNS/Gaia name",
    )
    url = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")
    comment = serializers.CharField(max_length=5000, required=False, allow_blank=True, default="")
    published = serializers.DateTimeField(required=False, help_text="Default: now")
    separate = serializers.BooleanField(
        required=False,
        default=False,
        help_text='true: create it even within 1.5" of an existing alert (else 409 nearby_alert)',
    )


class Cone:
    """A cone ``ra,dec,radius`` in degrees, selecting alerts by exact angular distance."""

    def __init__(self, text: str):
        try:
            self.ra, self.dec, self.radius = parse_cone(text)
        except BadInput as error:
            raise serializers.ValidationError(error.message) from None

    def select(self, alerts):
        """Narrow to the bounding box in SQL, then keep the alerts within the exact distance."""
        return [
            a
            for a in in_box(alerts, self.ra, self.dec, self.radius)
            if angular_distance_deg(self.ra, self.dec, a.ra, a.dec) <= self.radius
        ]


class AlertFilterSerializer(serializers.Serializer):
    observed = serializers.BooleanField(
        required=False, allow_null=True, default=None, help_text="true: with visible points; false: without"
    )
    published_since = serializers.DateTimeField(required=False, help_text="Published at or after (ISO 8601)")
    cone = serializers.CharField(required=False, max_length=100, help_text="ra,dec,radius in degrees")
    search = serializers.CharField(required=False, max_length=255, help_text="Part of an IVORN or alias")

    def validate_cone(self, value: str) -> Cone:
        return Cone(value)


@extend_schema(tags=["alerts"])
class AlertListView(ApiMixin, generics.ListCreateAPIView):
    """Alerts, newest first; anyone may read, an authenticated observatory or curator may create."""

    serializer_class = AlertSerializer
    permission_classes = [IsAuthenticatedOrReadOnly]

    def filters(self) -> dict:
        params = AlertFilterSerializer(data=self.request.query_params.dict())
        params.is_valid(raise_exception=True)
        return params.validated_data

    def get_queryset(self):
        filters = self.filters()
        alerts = Alert.objects.all().prefetch_related("aliases").order_by("-id")
        if filters.get("observed") is not None:
            alerts = alerts.filter(nfollowup__gt=0) if filters["observed"] else alerts.filter(nfollowup=0)
        if "published_since" in filters:
            alerts = alerts.filter(published__gte=filters["published_since"])
        if filters.get("search"):
            alerts = search_names(alerts, filters["search"])
        if "cone" in filters:
            return filters["cone"].select(alerts)
        return alerts

    @extend_schema(parameters=[AlertFilterSerializer])
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    @extend_schema(request=AlertCreateSerializer, responses={201: AlertSerializer})
    def post(self, request, *args, **kwargs):
        data = AlertCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        created = create_alert(user=request.user, **data.validated_data)
        alert = Alert.objects.get(pk=created.pk)
        body = AlertSerializer(alert, context={"request": request}).data
        if created.position_from:
            body["position_from"] = created.position_from
        return Response(body, status=201)


@extend_schema(tags=["alerts"])
class AlertDetailView(ApiMixin, generics.RetrieveAPIView):
    """One alert."""

    serializer_class = AlertSerializer
    queryset = Alert.objects.all()


class AliasCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=255, help_text="Another name (2024abc, ZTF24aaabbbb)")


@extend_schema(tags=["alerts"])
class AliasCreateView(ApiMixin, generics.GenericAPIView):
    """Curators give an alert another name (e.g. the one a 409 nearby_alert suggested)."""

    queryset = Alert.objects.all()
    permission_classes = [IsAdminUser]
    serializer_class = AliasCreateSerializer
    pagination_class = None

    @extend_schema(request=AliasCreateSerializer, responses={201: AlertSerializer, 200: AlertSerializer})
    def post(self, request, pk: int):
        data = AliasCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        created = add_alias(self.get_object(), data.validated_data["name"])
        alert = Alert.objects.get(pk=pk)
        body = AlertSerializer(alert, context={"request": request}).data
        return Response(body, status=201 if created else 200)


class LightCurvePointSerializer(serializers.Serializer):
    id = serializers.IntegerField(help_text="The follow-up point (GET/DELETE /api/v1/points/{id}/)")
    mjd = serializers.FloatField(allow_null=True)
    date = serializers.CharField(help_text="ISO 8601 UTC")
    mag = serializers.FloatField(allow_null=True)
    mag_err = serializers.FloatField(allow_null=True, help_text="null for an upper limit")
    calib_err = serializers.FloatField(allow_null=True, help_text="Add in quadrature to mag_err")
    is_limit = serializers.BooleanField()
    band = serializers.CharField()
    survey = serializers.CharField()
    observatory = serializers.CharField()


class LightCurveSerializer(serializers.Serializer):
    alert = AlertSerializer()
    points = LightCurvePointSerializer(many=True)
    downloads = serializers.DictField(child=serializers.CharField(), help_text="CSV, ECSV and VOTable URLs")


def lightcurve_rows(lc) -> list[dict]:
    """One object per visible point, in time order."""
    return [
        {
            "id": pk,
            "mjd": mjd,
            "date": date,
            "mag": mag,
            "mag_err": None if limit else magerr,
            "calib_err": caliberr,
            "is_limit": limit,
            "band": band,
            "survey": survey,
            "observatory": observatory,
        }
        for pk, mjd, date, mag, magerr, caliberr, limit, band, survey, observatory in zip(
            lc.id,
            lc.mjd,
            mjd_to_iso([m if m is not None else math.nan for m in lc.mjd]),
            lc.mag,
            lc.magerr,
            lc.caliberr,
            lc.is_limit,
            lc.filter,
            lc.catalog,
            lc.observatory,
            strict=True,
        )
    ]


@extend_schema(tags=["alerts"])
class LightCurveView(ApiMixin, generics.GenericAPIView):
    """The alert's light curve: one object per visible point, in time order."""

    queryset = Alert.objects.all()
    serializer_class = LightCurveSerializer
    pagination_class = None

    def get(self, request, pk: int):
        alert = self.get_object()
        lc = load_lightcurve(alert)
        downloads = {
            fmt: reverse("api-alert-lightcurve-download", args=[alert.pk, fmt], request=request)
            for fmt in DOWNLOADS
        }
        body = {
            "alert": AlertSerializer(alert, context={"request": request}).data,
            "points": lightcurve_rows(lc),
            "downloads": downloads,
        }
        return Response(body)


@extend_schema(tags=["alerts"])
class LightCurveDownloadView(ApiMixin, generics.GenericAPIView):
    """The same points as a CSV, ECSV or VOTable file."""

    queryset = Alert.objects.all()
    pagination_class = None

    def perform_content_negotiation(self, request, force=False):
        # The body is a file of the chosen format whatever the Accept header says; errors are JSON.
        return JSONRenderer(), JSONRenderer.media_type

    @extend_schema(
        operation_id="alerts_lightcurve_download",
        parameters=[OpenApiParameter("fmt", str, OpenApiParameter.PATH, enum=list(DOWNLOADS))],
        responses={
            (200, media_type): OpenApiResponse(OpenApiTypes.BINARY, description=f"The light curve as {fmt}")
            for fmt, media_type in DOWNLOADS.items()
        },
    )
    def get(self, request, pk: int, fmt: str):
        if fmt not in DOWNLOADS:
            raise NotFound(f"Unknown format {fmt[:20]!r}; use one of {', '.join(DOWNLOADS)}.")
        download = export_lightcurve(load_lightcurve(self.get_object()), fmt, None)
        response = HttpResponse(download.body, content_type=download.content_type)
        response["Content-Disposition"] = f'attachment; filename="{download.filename}"'
        return response
