"""Legacy endpoint POST /cgi/newuser: TOM systems (BHTOM) register an instrument with a curator's hashtag."""

from django.http import HttpResponse
from rest_framework import serializers
from rest_framework.parsers import FormParser, MultiPartParser

from gsafollowup.http import LegacyView

from .services import register_observatory


class NewUserSerializer(serializers.Serializer):
    obsName = serializers.CharField(max_length=200)
    lon = serializers.CharField(max_length=50)
    lat = serializers.CharField(max_length=50)
    allow_upload = serializers.CharField(max_length=10)
    prefix = serializers.CharField(max_length=100)


class NewUserView(LegacyView):
    """POST /cgi/newuser: 200 with one line ending ': <new hashtag>'; 409 prefix in use, 403 not a curator."""

    parser_classes = [MultiPartParser, FormParser]

    def post(self, request):
        serializer = NewUserSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        observatory, hashtag = register_observatory(
            curator=request.user,
            name=data["obsName"],
            prefix=data["prefix"],
            lon=data["lon"],
            lat=data["lat"],
            allow_upload=data["allow_upload"],
        )
        state = "may upload" if observatory.active else "inactive until a curator activates it"
        line = f"Created observatory {observatory.prefix} ({state}), its hashtag: {hashtag}\n"
        return HttpResponse(line, content_type="text/plain; charset=utf-8")
