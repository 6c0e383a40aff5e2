"""Login by hashtag and logout (sessions for the web forms)."""

from django.contrib import messages
from django.contrib.auth import authenticate, logout
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods, require_POST

from gsafollowup.errors import Forbidden, Throttled
from gsafollowup.http import url_under_prefix

from .auth import login_with_hashtag
from .forms import HashtagLoginForm


def _safe_target(request, target: str | None, default: str) -> str:
    """Where to go after login: a path on this site, never another host (no open redirect)."""
    if target and url_has_allowed_host_and_scheme(target, {request.get_host()}, request.is_secure()):
        return target
    return default


@require_http_methods(["GET", "HEAD", "POST"])
def login_view(request):
    """GET: the login page (its first form has the one input, hashtag). POST: log in with it."""
    if request.method != "POST":
        # Scripted harvesters follow the home page's "Login" link here and fill form 0.
        target = _safe_target(request, request.GET.get("next"), url_under_prefix(request, "home"))
        return render(request, "observers/login.html", {"form": HashtagLoginForm(), "next": target})
    form = HashtagLoginForm(request.POST)
    target = _safe_target(request, request.POST.get("next"), "/")
    if not form.is_valid():
        messages.error(request, "Enter your hashtag.")
        return redirect(target)
    try:
        user = authenticate(request, hashtag=form.cleaned_data["hashtag"])
    except (Throttled, Forbidden) as error:
        messages.error(request, error.message)
        return redirect(target)
    if user is None:
        messages.error(request, "Unknown or revoked hashtag.")
        return redirect(target)
    login_with_hashtag(request, user)
    messages.success(request, f"Logged in as {user.observatory.name}.")
    return redirect(target)


@require_POST
def logout_view(request):
    logout(request)
    return redirect("/")
