"""Legacy endpoint POST /cgi/newevent."""

from rest_framework import serializers

from gsafollowup.http import LegacyView

from .services import create_alert, legacy_time


class NewEventSerializer(serializers.Serializer):
    EventID = serializers.CharField(max_length=1000, trim_whitespace=False)
    # Both may be left out for a TNS or Gaia name: the position of its last harvest is taken.
    ra = serializers.CharField(max_length=50, required=False, allow_blank=True, default="")
    dec = serializers.CharField(max_length=50, required=False, allow_blank=True, default="")
    url = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")
    comment = serializers.CharField(max_length=5000, required=False, allow_blank=True, default="")
    # New: 1 creates the alert even within 1.5" of an existing one (otherwise 409, to add an alias).
    separate = serializers.BooleanField(required=False, default=False)


def alert_payload(alert) -> dict:
    """The legacy answer; ``position_from`` only when the position was taken from a harvest."""
    payload = {
        "id": alert.pk,
        "ivorn": alert.ivorn,
        "ra": alert.ra,
        "dec": alert.dec,
        "url": alert.url,
        "published": legacy_time(alert.published),
        "comment": alert.comment,
    }
    if getattr(alert, "position_from", ""):
        payload["position_from"] = alert.position_from
    return payload


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
            separate=data["separate"],
        )
        return self.respond(
            request, alert_payload(alert), "alerts/created.html", {"alert": alert}, status=201
        )
