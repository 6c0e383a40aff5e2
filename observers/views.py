"""Login by hashtag and logout (sessions for the web forms)."""

from django.contrib import messages
from django.contrib.auth import authenticate, login, logout
from django.shortcuts import redirect
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from gsafollowup.errors import Throttled

from .auth import check_not_locked_out
from .forms import HashtagLoginForm


@require_POST
def login_view(request):
    """Log in with a hashtag; the session then stands for the observatory."""
    form = HashtagLoginForm(request.POST)
    target = request.POST.get("next") or "/"
    if not url_has_allowed_host_and_scheme(target, {request.get_host()}, request.is_secure()):
        target = "/"
    if not form.is_valid():
        messages.error(request, "Enter your hashtag.")
        return redirect(target)
    try:
        check_not_locked_out(request)
    except Throttled as error:
        messages.error(request, error.message)
        return redirect(target)
    user = authenticate(request, hashtag=form.cleaned_data["hashtag"])
    if user is None:
        messages.error(request, "Unknown or revoked hashtag.")
        return redirect(target)
    login(request, user, backend="observers.auth.HashtagBackend")
    messages.success(request, f"Logged in as {user.observatory.name}.")
    return redirect(target)


@require_POST
def logout_view(request):
    logout(request)
    return redirect("/")
