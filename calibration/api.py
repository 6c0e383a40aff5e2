"""REST API for follow-up points (list, detail, upload, hide) and the loaded reference surveys."""

import math

import numpy as np
from django.db.models import Q
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import generics, serializers
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.permissions import IsAuthenticated, IsAuthenticatedOrReadOnly
from rest_framework.response import Response
from rest_framework.reverse import reverse
from rest_framework.views import APIView

from gsafollowup.http import ApiMixin
from jobs.api import BatchSerializer
from observers.auth import current_observatory

from .batches import frame_arguments, submit_batch
from .forms import calibrate_upload, upload_arguments
from .models import FollowupPoint, ReferenceCatalog
from .references import FOOTPRINT_ORDER, footprint_bits, healpix_index, loaded_surveys
from .services import hide_point, point_fields
from .surveys import BANDS, SURVEYS

SKY_DEG2 = 4 * math.pi * (180 / math.pi) ** 2


class FiniteFloatField(serializers.FloatField):
    """A float that renders NaN and infinities as null, since strict JSON has neither."""

    def __init__(self, **kwargs):
        kwargs.setdefault("allow_null", True)
        kwargs.setdefault("read_only", True)
        super().__init__(**kwargs)

    def to_representation(self, value):
        value = super().to_representation(value)
        return value if math.isfinite(value) else None


class PointSerializer(serializers.ModelSerializer):
    """A follow-up point as listed: who measured what, when, and in which band."""

    alert_ivorn = serializers.CharField(source="alert.ivorn", read_only=True)
    observatory = serializers.CharField(source="observatory.name", read_only=True)
    band = serializers.CharField(source="filter", read_only=True)
    mag = FiniteFloatField(help_text="Calibrated magnitude, or the limiting magnitude of a limit")
    mag_err = serializers.SerializerMethodField(help_text="Statistical error; null for an upper limit")
    calib_err = FiniteFloatField(help_text="Calibration error, add in quadrature to mag_err")
    total_err = serializers.SerializerMethodField(
        help_text="mag_err and calib_err in quadrature; null for an upper limit"
    )
    url = serializers.SerializerMethodField()

    class Meta:
        model = FollowupPoint
        fields = [
            "id",
            "url",
            "alert",
            "alert_ivorn",
            "observatory",
            "observatory_id",
            "mjd",
            "exptime",
            "survey",
            "band",
            "mag",
            "mag_err",
            "calib_err",
            "total_err",
            "is_limit",
            "hidden",
            "imported",
            "comment",
            "created",
        ]
        read_only_fields = fields

    def get_mag_err(self, point) -> float | None:
        if point.is_limit or point.mag_err is None or not math.isfinite(point.mag_err):
            return None
        return point.mag_err

    def get_total_err(self, point) -> float | None:
        if self.get_mag_err(point) is None:
            return None
        return point.total_err

    def get_url(self, point) -> str | None:
        if point.pk is None:
            return None
        return reverse("api-point", args=[point.pk], request=self.context.get("request"))


class PointDetailSerializer(PointSerializer):
    """A point with every fit detail: the calibrators, the colour term and the run's flags."""

    zeropoint = FiniteFloatField()
    colour_term = FiniteFloatField()
    scatter = FiniteFloatField()
    outlier_fraction = FiniteFloatField()
    radius_arcsec = FiniteFloatField(help_text="Matching radius used, arcsec")
    ra = FiniteFloatField(help_text="Measured position, degrees")
    dec = FiniteFloatField(help_text="Measured position, degrees")
    details = serializers.JSONField(read_only=True, help_text="All fit details (calibrators, fit, flags)")
    plot = serializers.SerializerMethodField(help_text="PNG of the calibration diagnostics")

    class Meta(PointSerializer.Meta):
        fields = PointSerializer.Meta.fields + [
            "zeropoint",
            "colour_term",
            "scatter",
            "npoints",
            "outlier_fraction",
            "radius_arcsec",
            "ra",
            "dec",
            "algorithm_version",
            "catalog_name",
            "catalog_sha256",
            "catalog_size",
            "updated",
            "details",
            "plot",
        ]
        read_only_fields = fields

    def get_plot(self, point) -> str | None:
        if point.pk is None or not (point.details or {}).get("stars"):
            return None
        return reverse("followup-plot", args=[point.pk], request=self.context.get("request"))


class DryRunPointSerializer(PointDetailSerializer):
    """What a dry run calibrated, in the shape of a stored point that was not stored."""

    id = serializers.IntegerField(read_only=True, allow_null=True, help_text="null: nothing was stored")
    created = serializers.DateTimeField(read_only=True, allow_null=True)
    updated = serializers.DateTimeField(read_only=True, allow_null=True)

    class Meta(PointDetailSerializer.Meta):
        pass


class PointFilterSerializer(serializers.Serializer):
    # Ids are 64-bit: a larger number is refused here, not passed to SQLite (OverflowError, a 500).
    alert = serializers.IntegerField(required=False, min_value=1, max_value=2**63 - 1, help_text="Alert id")
    observatory = serializers.CharField(required=False, max_length=100, help_text="Observatory name")
    band = serializers.CharField(required=False, max_length=10, help_text="e.g. V, g (case-sensitive)")
    survey = serializers.CharField(required=False, max_length=20, help_text="e.g. APASS")
    mjd_min = serializers.FloatField(required=False, min_value=0, max_value=1e6)
    mjd_max = serializers.FloatField(required=False, min_value=0, max_value=1e6)
    limits = serializers.BooleanField(
        required=False, allow_null=True, default=None, help_text="true: only upper limits; false: none"
    )


class PointUploadSerializer(serializers.Serializer):
    """The legacy upload fields under snake_case names, parsed by the same code as /cgi/upload."""

    catalog = serializers.FileField(
        allow_empty_file=True, help_text="SExtractor ASCII_HEAD, FITS table or FITS_LDAC (legacy sexCat)"
    )
    event_id = serializers.CharField(max_length=1000, help_text="The alert's IVORN (legacy EventID)")
    mjd = serializers.FloatField(help_text="MJD of the observation (legacy MJD)")
    exp_time = serializers.FloatField(required=False, allow_null=True, help_text="Seconds (legacy expTime)")
    match_dist = serializers.FloatField(
        required=False, allow_null=True, help_text="Matching radius in arcsec; absent or negative: automatic"
    )
    force_filter = serializers.CharField(
        required=False, default="no", max_length=50, help_text="no, SURVEY/BAND, SURVEY/any or any/BAND"
    )
    dry_run = serializers.BooleanField(required=False, default=False, help_text="Calibrate but store nothing")
    comment = serializers.CharField(required=False, allow_blank=True, default="", max_length=2000)

    def validate(self, data):
        legacy = {
            "EventID": data["event_id"],
            "MJD": data["mjd"],
            "expTime": data.get("exp_time"),
            "matchDist": data.get("match_dist"),
            "forceFilter": data["force_filter"],
            "dryRun": "1" if data["dry_run"] else "0",
            "comment": data["comment"],
        }
        return {**upload_arguments(legacy), "sexCat": data["catalog"]}


def visible_points(user):
    """Visible points, and the caller's own hidden ones (nobody else sees those)."""
    points = FollowupPoint.objects.select_related("alert", "observatory")
    if user is not None and user.is_authenticated:
        return points.filter(Q(hidden=False) | Q(observatory__user=user))
    return points.filter(hidden=False)


def unsaved_point(outcome, observatory) -> FollowupPoint:
    """The point a dry run would have stored, to answer it in the stored point's shape."""
    return FollowupPoint(
        alert=outcome.alert,
        observatory=observatory,
        mjd=outcome.mjd,
        details=outcome.result.to_dict(),
        **point_fields(outcome.result),
    )


@extend_schema(tags=["points"])
class PointListView(ApiMixin, generics.ListCreateAPIView):
    """Follow-up points in time order per alert; upload a catalog to calibrate a new one."""

    serializer_class = PointSerializer
    permission_classes = [IsAuthenticatedOrReadOnly]
    parser_classes = [MultiPartParser, FormParser]

    def get_queryset(self):
        params = PointFilterSerializer(data=self.request.query_params.dict())
        params.is_valid(raise_exception=True)
        filters = params.validated_data
        points = visible_points(self.request.user).order_by("alert_id", "mjd", "pk")
        lookups = {
            "alert": "alert_id",
            "observatory": "observatory__name",
            "band": "filter",
            "survey": "survey",
            "mjd_min": "mjd__gte",
            "mjd_max": "mjd__lte",
        }
        points = points.filter(**{lookups[k]: v for k, v in filters.items() if k in lookups})
        if filters.get("limits") is not None:
            points = points.filter(is_limit=filters["limits"])
        return points

    @extend_schema(parameters=[PointFilterSerializer])
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    @extend_schema(
        request={"multipart/form-data": PointUploadSerializer},
        responses={
            201: OpenApiResponse(PointDetailSerializer, description="Calibrated and stored"),
            200: OpenApiResponse(DryRunPointSerializer, description="Dry run: calibrated, nothing stored"),
        },
    )
    def post(self, request, *args, **kwargs):
        upload = PointUploadSerializer(data=request.data)
        upload.is_valid(raise_exception=True)
        outcome = calibrate_upload(request.user, upload.validated_data)
        context = {"request": request}
        if outcome.dry_run:
            point = unsaved_point(outcome, current_observatory(request.user))
            return Response(DryRunPointSerializer(point, context=context).data, status=200)
        return Response(PointDetailSerializer(outcome.point, context=context).data, status=201)


@extend_schema(tags=["points"])
class PointDetailView(ApiMixin, generics.RetrieveDestroyAPIView):
    """One point with all fit details; DELETE hides it (its observatory or a curator)."""

    serializer_class = PointDetailSerializer

    def get_queryset(self):
        return visible_points(self.request.user)

    def get_permissions(self):
        return [IsAuthenticated()] if self.request.method == "DELETE" else []

    @extend_schema(responses={204: None})
    def delete(self, request, pk: int):
        hide_point(request.user, pk)
        return Response(status=204)


class SurveySerializer(serializers.Serializer):
    survey = serializers.CharField()
    version = serializers.CharField()
    description = serializers.CharField()
    bands = serializers.ListField(child=serializers.CharField())
    stars = serializers.IntegerField()
    coverage_deg2 = serializers.FloatField(help_text="Sky area holding its stars")
    sky_fraction = serializers.FloatField()
    covers = serializers.BooleanField(
        allow_null=True,
        help_text="With ra and dec: whether it has stars in the HEALPix order-8 pixel (0.23 deg) there",
    )


class BandSerializer(serializers.Serializer):
    band = serializers.CharField()
    surveys = serializers.ListField(child=serializers.CharField(), help_text="Loaded surveys that have it")


class SurveysSerializer(serializers.Serializer):
    surveys = SurveySerializer(many=True, help_text="The loaded reference surveys")
    bands = BandSerializer(many=True)
    force_filter = serializers.ListField(
        child=serializers.CharField(), help_text="Values of force_filter that can calibrate here"
    )


class PositionSerializer(serializers.Serializer):
    ra = serializers.FloatField(required=False, min_value=0, max_value=360, help_text="Degrees; with dec")
    dec = serializers.FloatField(required=False, min_value=-90, max_value=90, help_text="Degrees; with ra")

    def validate(self, data):
        if ("ra" in data) != ("dec" in data):
            raise serializers.ValidationError("Give both ra and dec, or neither.")
        return data


def surveys_covering(ra: float, dec: float) -> set[str]:
    """The loaded surveys whose coverage map has stars in the order-8 pixel holding (ra, dec)."""
    pixel = int(healpix_index(np.array([ra]), np.array([dec]), order=FOOTPRINT_ORDER)[0])
    catalogs = ReferenceCatalog.objects.only("survey", "footprint")
    return {c.survey for c in catalogs if footprint_bits(c.footprint)[pixel]}


def survey_listing(ra: float | None = None, dec: float | None = None) -> dict:
    """Loaded surveys, the bands they give, and the force_filter values that can use them."""
    covering = surveys_covering(ra, dec) if ra is not None else None
    surveys = [
        {
            **entry,
            "description": SURVEYS[entry["survey"]].description if entry["survey"] in SURVEYS else "",
            "sky_fraction": round(entry["coverage_deg2"] / SKY_DEG2, 6),
            "covers": None if covering is None else entry["survey"] in covering,
        }
        for entry in loaded_surveys()
    ]
    bands = [
        {"band": band, "surveys": [s["survey"] for s in surveys if band in s["bands"]]}
        for band in BANDS
        if any(band in s["bands"] for s in surveys)
    ]
    force = ["no"]
    for entry in surveys:
        force += [f"{entry['survey']}/any"] + [f"{entry['survey']}/{band}" for band in entry["bands"]]
    force += [f"any/{entry['band']}" for entry in bands]
    return {"surveys": surveys, "bands": bands, "force_filter": force}


@extend_schema(tags=["surveys"], parameters=[PositionSerializer], responses=SurveysSerializer)
class SurveyListView(ApiMixin, APIView):
    """The loaded reference surveys, their bands and sky coverage, and the valid force_filter values."""

    def get(self, request):
        position = PositionSerializer(data=request.query_params.dict())
        position.is_valid(raise_exception=True)
        return Response(SurveysSerializer(survey_listing(**position.validated_data)).data)


class BatchUploadSerializer(serializers.Serializer):
    """Many catalogs at once: files (several parts, or zip/tar archives), fields for every frame."""

    files = serializers.ListField(
        child=serializers.FileField(allow_empty_file=True),
        allow_empty=False,
        help_text="Catalogs, and/or zip or tar(.gz) archives of catalogs with an optional manifest.csv",
    )
    event_id = serializers.CharField(required=False, default="", max_length=1000)
    mjd = serializers.CharField(required=False, default="", max_length=50)
    exp_time = serializers.CharField(required=False, default="", max_length=50)
    match_dist = serializers.CharField(required=False, default="", max_length=50)
    force_filter = serializers.CharField(required=False, default="", max_length=50)
    dry_run = serializers.BooleanField(required=False, default=False, help_text="Calibrate, store nothing")
    comment = serializers.CharField(required=False, allow_blank=True, default="", max_length=2000)

    def validate(self, data):
        # A field given for every frame is checked once here: one mistake, one 400, not N failures.
        fields = {k: v for k, v in data.items() if k not in ("files", "dry_run") and str(v).strip()}
        frame_arguments(fields, {"mjd": fields.get("mjd") or "59000"}, False)
        return {"files": data["files"], "dry_run": data["dry_run"], "fields": fields}


@extend_schema(tags=["jobs"])
class BatchCreateView(ApiMixin, APIView):
    """Submit many catalogs; each frame becomes a job. 202 with Location: the batch to poll."""

    permission_classes = [IsAuthenticated]
    parser_classes = [MultiPartParser, FormParser]

    @extend_schema(
        request={"multipart/form-data": BatchUploadSerializer},
        responses={202: OpenApiResponse(BatchSerializer, description="Accepted: the frames are queued")},
    )
    def post(self, request):
        upload = BatchUploadSerializer(data=request.data)
        upload.is_valid(raise_exception=True)
        data = upload.validated_data
        batch = submit_batch(
            observatory=current_observatory(request.user),
            uploads=data["files"],
            fields=data["fields"],
            dry_run=data["dry_run"],
        )
        body = BatchSerializer(batch, context={"request": request}).data
        return Response(body, status=202, headers={"Location": body["url"]})
