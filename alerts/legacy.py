"""Legacy endpoint POST /cgi/newevent."""

from rest_framework import serializers

from gsafollowup.http import LegacyView

from .services import create_alert, legacy_time


class NewEventSerializer(serializers.Serializer):
    EventID = serializers.CharField(max_length=1000, trim_whitespace=False)
    ra = serializers.CharField(max_length=50)
    dec = serializers.CharField(max_length=50)
    url = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")
    comment = serializers.CharField(max_length=5000, required=False, allow_blank=True, default="")


def alert_payload(alert) -> dict:
    return {
        "id": alert.pk,
        "ivorn": alert.ivorn,
        "ra": alert.ra,
        "dec": alert.dec,
        "url": alert.url,
        "published": legacy_time(alert.published),
        "comment": alert.comment,
    }


class NewEventView(LegacyView):
    """POST /cgi/newevent: create an alert (201), 409 if the IVORN exists, 400 on bad coordinates."""

    def post(self, request):
        serializer = NewEventSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        alert = create_alert(
            ivorn=data["EventID"],
            ra=data["ra"],
            dec=data["dec"],
            url=data["url"],
            comment=data["comment"],
            user=request.user,
        )
        return self.respond(
            request, alert_payload(alert), "alerts/created.html", {"alert": alert}, status=201
        )
