"""Pages of background work: a job and a batch, with progress bars kept live by static/js/progress.js."""

from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404, render
from django.urls import reverse

from .models import Batch
from .services import visible_to


@login_required
def job_page(request, pk):
    """GET /jobs/<id>/: the job's state; the page polls /api/v1/jobs/<id>/ until it ends."""
    job = get_object_or_404(visible_to(request.user), pk=pk)
    return render(request, "jobs/job.html", {"job": job, "api_url": reverse("api-job", args=[job.pk])})


@login_required
def batch_page(request, pk):
    """GET /batches/<id>/: every frame's state; the page polls /api/v1/batches/<id>/ until all end."""
    batches = (
        Batch.objects.all() if request.user.is_staff else Batch.objects.filter(observatory__user=request.user)
    )
    batch = get_object_or_404(batches, pk=pk)
    jobs = batch.jobs.order_by("label", "pk")
    return render(
        request,
        "jobs/batch.html",
        {"batch": batch, "jobs": jobs, "api_url": reverse("api-batch", args=[batch.pk])},
    )
