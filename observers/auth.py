"""Hashtag authentication: a Django auth backend (login form) and a DRF authentication class.

The legacy contract accepts a hashtag as a form field, a query parameter or a cookie; new
clients may send ``Authorization: Hashtag <value>``. Wrong hashtags are counted per client
address (an IPv6 /64 as one) in the database; once too many arrived, further wrong ones from
that address are refused for a while, but never a valid one.
"""

import ipaddress
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, login, logout
from django.contrib.auth.backends import BaseBackend
from django.contrib.auth.models import AnonymousUser
from rest_framework import authentication, exceptions

from gsafollowup.errors import Forbidden, NotAuthenticated, Throttled
from gsafollowup.timing import stage

from .models import HASHTAG_RE, Hashtag, HashtagFailure

FIELD = "hashtag"


def client_address(request) -> str:
    """The address failures are counted against: the peer, or what the trusted proxies saw.

    Each of the TRUSTED_PROXY_COUNT proxies appends the address it received the request from
    to X-Forwarded-For, so the client is that many entries from the right; entries further
    left were written by the client and are not believed.
    """
    trusted = settings.TRUSTED_PROXY_COUNT
    if trusted > 0:
        forwarded = [a.strip() for a in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if a.strip()]
        if len(forwarded) >= trusted:
            return forwarded[-trusted]
    return request.META.get("REMOTE_ADDR") or "unknown"


def login_address(request) -> str | None:
    """The client address for django-axes' records: a valid IP address, or None (e.g. force_login)."""
    address = client_address(request)
    try:
        return str(ipaddress.ip_address(address))
    except ValueError:
        return None


def failure_address(request) -> str:
    """What wrong hashtags are counted against: the IPv4 address, or the IPv6 /64 network.

    One IPv6 host usually holds a whole /64 and can change its address within it at will.
    """
    address = client_address(request)
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address[:64]
    if ip.version == 6 and ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    if ip.version == 6:
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


def _throttled() -> Throttled:
    minutes = max(1, settings.HASHTAG_FAILURE_WINDOW // 60)
    return Throttled(f"Too many wrong hashtags from your address; try again in {minutes} min.")


def check_hashtag(request, clear: str) -> Hashtag:
    """The usable Hashtag for this clear value, counting failures; raises a domain error otherwise.

    A valid hashtag is never refused because of other failures: one stale key on a shared host
    (a TOM server) must not lock out all its users. Once an address sent HASHTAG_FAILURE_LIMIT
    wrong ones, its further wrong ones get 429 and are not counted (no write). Hashtags of the
    issued form carry 128 random bits, so looking them up during a lock-out lets nobody guess
    one; any other value (an imported legacy key may be short) gets 429 without a lookup.
    """
    clear = clear.strip()
    address = failure_address(request)
    limit, window = settings.HASHTAG_FAILURE_LIMIT, settings.HASHTAG_FAILURE_WINDOW
    issued_form = HASHTAG_RE.fullmatch(clear) is not None
    # An issued-form hashtag is looked up even during a lock-out, so a valid one is answered
    # before the failures are asked about: one query less on every upload, the same outcome.
    found = Hashtag.objects.find(clear) if issued_form else None
    if found is None:
        if HashtagFailure.objects.locked_out(address, limit, window):
            raise _throttled()
        if not issued_form:
            found = Hashtag.objects.find(clear)
    if found is None:
        HashtagFailure.objects.record(address, window)
        raise NotAuthenticated("Unknown or revoked hashtag.")
    found.touch()
    return found


#: The session key holding the id of the hashtag a session was opened with.
SESSION_HASHTAG = "hashtag_id"
BACKEND = "observers.auth.HashtagBackend"


class HashtagBackend(BaseBackend):
    """Django auth backend for the login form, whose single input is the hashtag."""

    def authenticate(self, request, hashtag: str | None = None, **kwargs):
        if not hashtag:
            return None
        try:
            found = check_hashtag(request, hashtag)
        except NotAuthenticated:
            return None
        user = found.observatory.user
        if user.is_staff:
            # A curator's hashtag is kept in scripts (/cgi/newuser); a session made from it would
            # open the admin, which stays behind the curator's password.
            raise Forbidden("A curator's hashtag does not log in here; curators log in at /admin/.")
        # The session remembers which hashtag opened it (login_with_hashtag), so revoking that
        # hashtag or deactivating the observatory ends the session (HashtagSessionMiddleware).
        user.login_hashtag = found
        return user

    def get_user(self, user_id):
        from django.contrib.auth import get_user_model

        user = get_user_model().objects.filter(pk=user_id, is_active=True).first()
        return user


def login_with_hashtag(request, user) -> None:
    """Open a session for a user the HashtagBackend authenticated, tied to the hashtag used."""
    login(request, user, backend=BACKEND)
    request.session[SESSION_HASHTAG] = user.login_hashtag.pk


def session_hashtag_usable(request) -> bool:
    """For a hashtag session: is the hashtag it was opened with still valid, its observatory active?"""
    hashtag_id = request.session.get(SESSION_HASHTAG)
    if hashtag_id is None:
        return False  # opened before sessions remembered their hashtag: log in again
    return Hashtag.objects.usable().filter(pk=hashtag_id, observatory__user_id=request.user.pk).exists()


class HashtagSessionMiddleware:
    """End a hashtag session at the first request after its hashtag is revoked or its observatory
    deactivated: each request of such a session checks again (one indexed query).

    Sessions of curators (password logins) are left to Django.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = request.user
        if (
            user.is_authenticated
            and request.session.get(BACKEND_SESSION_KEY) == BACKEND
            and not session_hashtag_usable(request)
        ):
            logout(request)
        return self.get_response(request)


def _same_origin(request, url: str) -> bool:
    """Whether ``url`` (an Origin or Referer) is this site or a trusted origin (CSRF_TRUSTED_ORIGINS)."""
    parts = urlsplit(url)
    origin = f"{parts.scheme}://{parts.netloc}".lower()
    here = f"{request.scheme}://{request.get_host()}".lower()
    return origin == here or origin in {o.lower().rstrip("/") for o in settings.CSRF_TRUSTED_ORIGINS}


def cookie_may_authenticate(request) -> bool:
    """A hashtag cookie authenticates safe requests, and unsafe ones only from this site.

    A browser sends the cookie with any site's form post, so an unsafe request authenticated
    by it must name this site in Origin (or, without Origin, in Referer). A request with
    neither cannot show where it came from and is not authenticated by the cookie; scripts
    send the hashtag as a form field, a query parameter or the Authorization header instead.
    """
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return True
    origin = request.META.get("HTTP_ORIGIN")
    if origin and origin != "null":
        return _same_origin(request, origin)
    referer = request.META.get("HTTP_REFERER")
    return bool(referer) and _same_origin(request, referer)


class HashtagAuthentication(authentication.BaseAuthentication):
    """DRF authentication by hashtag: header, form field, query parameter, or cookie."""

    keyword = "Hashtag"

    def _clear_value(self, request) -> str | None:
        header = authentication.get_authorization_header(request).decode("latin-1").split()
        if header and header[0].lower() == self.keyword.lower():
            if len(header) != 2:
                raise exceptions.AuthenticationFailed("Authorization header must be 'Hashtag <value>'.")
            return header[1]
        if request.method not in ("GET", "HEAD", "OPTIONS"):
            # A body that cannot be parsed is answered as such (400), not as a missing hashtag.
            value = request.data.get(FIELD) if hasattr(request.data, "get") else None
            if value:
                return str(value)
        value = request.query_params.get(FIELD)
        if value:
            return value
        value = request._request.COOKIES.get(FIELD)
        if value and cookie_may_authenticate(request._request):
            return value
        return None

    def authenticate(self, request):
        with stage("parse"):  # a form post's hashtag is in its body: reading it parses the upload
            clear = self._clear_value(request)
        if not clear:
            return None
        try:
            with stage("hashtag"):
                found = check_hashtag(request._request, clear)
        except Throttled as error:
            raise exceptions.Throttled(detail=error.message) from error
        except NotAuthenticated as error:
            raise exceptions.AuthenticationFailed(error.message) from error
        return found.observatory.user, found

    def authenticate_header(self, request):
        return self.keyword


def current_observatory(user):
    """The Observatory a user acts for, or None (anonymous, or a curator)."""
    if user is None or isinstance(user, AnonymousUser) or not user.is_authenticated:
        return None
    if user.is_staff:
        # A curator's own observatory only holds the curator's hashtags: it never uploads.
        return None
    return getattr(user, "observatory", None)


def path_without_hashtag(request) -> str:
    """The request's path and query without a hashtag parameter (for links and next= fields)."""
    params = request.GET.copy()
    params.pop(FIELD, None)
    return request.path + (f"?{params.urlencode()}" if params else "")
