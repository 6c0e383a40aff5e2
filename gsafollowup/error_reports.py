"""Error reports (the 500 page in DEBUG, e-mails to ADMINS) without hashtags."""

from django.views.debug import ExceptionReporter, SafeExceptionReporterFilter

from .redaction import REDACTED, redact

FIELD = "hashtag"


class HashtagReporterFilter(SafeExceptionReporterFilter):
    """Hides the hashtag field of POST bodies and hashtags anywhere in the request's META."""

    def get_post_parameters(self, request):
        params = super().get_post_parameters(request)
        if request is not None and FIELD in params:
            params = params.copy()
            params[FIELD] = self.cleansed_substitute
        return params

    def get_safe_request_meta(self, request):
        meta = super().get_safe_request_meta(request)
        return {key: redact(value) if isinstance(value, str) else value for key, value in meta.items()}

    def get_safe_cookies(self, request):
        cookies = super().get_safe_cookies(request)
        return {key: self.cleansed_substitute if key == FIELD else value for key, value in cookies.items()}


class HashtagExceptionReporter(ExceptionReporter):
    """Redacts what the filter cannot reach: the URL, GET parameters, frame variables, the message."""

    def get_traceback_data(self):
        data = super().get_traceback_data()
        for frame in data["frames"]:
            if "vars" in frame:
                frame["vars"] = [(name, redact(value)) for name, value in frame["vars"]]
        if "request_GET_items" in data:
            data["request_GET_items"] = [
                (key, REDACTED if key == FIELD else redact(value)) for key, value in data["request_GET_items"]
            ]
        for key in ("request_insecure_uri", "exception_value", "exception_notes"):
            if isinstance(data.get(key), str):
                data[key] = redact(data[key])
        return data
