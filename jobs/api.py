"""REST API of background work: GET /api/v1/jobs/{id}/ and GET /api/v1/batches/{id}/."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.generics import RetrieveAPIView
from rest_framework.permissions import IsAuthenticated
from rest_framework.reverse import reverse

from gsafollowup.http import ApiMixin

from .models import Batch, Job
from .services import batch_counts, visible_to


class JobSerializer(serializers.ModelSerializer):
    """A job: its state, how far it is, what it stored (result, result_url) or why it failed."""

    url = serializers.SerializerMethodField()
    page = serializers.SerializerMethodField()
    file = serializers.CharField(source="label", read_only=True)
    batch = serializers.SerializerMethodField()
    error = serializers.SerializerMethodField(help_text="null, or {code, message}: what to do about it")
    result_url = serializers.SerializerMethodField(help_text="The stored point's page")

    class Meta:
        model = Job
        fields = [
            "id", "url", "page", "kind", "file", "batch", "state", "progress", "stage", "attempts",
            "result", "result_url", "error", "created", "started_at", "finished_at",
        ]  # fmt: skip
        read_only_fields = fields

    def get_url(self, job) -> str:
        return reverse("api-job", args=[job.pk], request=self.context.get("request"))

    def get_page(self, job) -> str:
        return reverse("job-page", args=[job.pk], request=self.context.get("request"))

    def get_batch(self, job) -> str | None:
        if job.batch_id is None:
            return None
        return reverse("api-batch", args=[job.batch_id], request=self.context.get("request"))

    def get_error(self, job) -> dict | None:
        # A pending job may carry the message of the attempt it waits to repeat: not an end yet.
        if job.state != Job.FAILED:
            return None
        return {"code": job.error_code, "message": job.error_message}

    def get_result_url(self, job) -> str | None:
        request = self.context.get("request")
        if not job.result_url:
            return None
        return request.build_absolute_uri(job.result_url) if request else job.result_url


class BatchSerializer(serializers.ModelSerializer):
    """A batch: counts per state, overall progress and every frame's job."""

    url = serializers.SerializerMethodField()
    page = serializers.SerializerMethodField()
    summary = serializers.SerializerMethodField()
    jobs = serializers.SerializerMethodField()

    class Meta:
        model = Batch
        fields = ["id", "url", "page", "label", "dry_run", "created", "summary", "jobs"]
        read_only_fields = fields

    def get_url(self, batch) -> str:
        return reverse("api-batch", args=[batch.pk], request=self.context.get("request"))

    def get_page(self, batch) -> str:
        return reverse("batch-page", args=[batch.pk], request=self.context.get("request"))

    def get_summary(self, batch) -> dict:
        return batch_counts(batch)

    @extend_schema(responses=JobSerializer(many=True))
    def get_jobs(self, batch) -> list:
        jobs = batch.jobs.order_by("label", "pk")
        return JobSerializer(jobs, many=True, context=self.context).data


@extend_schema(tags=["jobs"])
class JobDetailView(ApiMixin, RetrieveAPIView):
    """One job of the caller's observatory (curators: any)."""

    serializer_class = JobSerializer
    permission_classes = [IsAuthenticated]

    def get_queryset(self):
        return visible_to(self.request.user)


@extend_schema(tags=["jobs"])
class BatchDetailView(ApiMixin, RetrieveAPIView):
    """One batch of the caller's observatory with every frame's job."""

    serializer_class = BatchSerializer
    permission_classes = [IsAuthenticated]

    def get_queryset(self):
        user = self.request.user
        batches = Batch.objects.all()
        return batches if user.is_staff else batches.filter(observatory__user=user)
