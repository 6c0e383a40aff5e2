"""REST API for the calling observatory: GET /api/v1/observatories/me (no secrets)."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from gsafollowup.errors import NotFound
from gsafollowup.http import ApiMixin

from .auth import current_observatory
from .models import Observatory


class ObservatorySerializer(serializers.ModelSerializer):
    points = serializers.SerializerMethodField(help_text="Visible follow-up points it has stored")
    active_hashtags = serializers.SerializerMethodField(help_text="How many of its hashtags work")

    class Meta:
        model = Observatory
        fields = [
            "id",
            "name",
            "prefix",
            "longitude",
            "latitude",
            "altitude",
            "filters",
            "contact",
            "active",
            "points",
            "active_hashtags",
        ]
        read_only_fields = fields

    def get_points(self, observatory) -> int:
        return observatory.followups.filter(hidden=False).count()

    def get_active_hashtags(self, observatory) -> int:
        return observatory.hashtags.filter(revoked_at__isnull=True).count()


@extend_schema(tags=["observatories"], responses=ObservatorySerializer)
class MyObservatoryView(ApiMixin, APIView):
    """The observatory the hashtag (or session) acts for."""

    permission_classes = [IsAuthenticated]

    def get(self, request):
        observatory = current_observatory(request.user)
        if observatory is None:
            raise NotFound("This account acts for no observatory (a curator account).")
        return Response(ObservatorySerializer(observatory).data)
