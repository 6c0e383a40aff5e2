from django.apps import AppConfig
from django.core import checks


class CalibrationConfig(AppConfig):
    name = "calibration"
    verbose_name = "Calibration"

    def ready(self):
        checks.register(check_reference_sources, checks.Tags.compatibility)
        # The tasks register the job kinds they run (jobs.services.TASKS) for the supervisor.
        from . import tasks  # noqa: F401


def check_reference_sources(app_configs=None, **kwargs):
    """REFERENCE_SOURCES names known surveys and valid sources (checked at start, not at the first upload)."""
    from django.conf import settings
    from django.core.exceptions import ImproperlyConfigured

    from .references import source_of
    from .surveys import SURVEYS

    errors = []
    for survey in settings.REFERENCE_SOURCES:
        if survey not in SURVEYS:
            errors.append(
                checks.Error(
                    f"REFERENCE_SOURCES names the unknown survey {survey!r}; known: {', '.join(SURVEYS)}.",
                    id="calibration.E001",
                )
            )
            continue
        try:
            source_of(survey)
        except ImproperlyConfigured as error:
            errors.append(checks.Error(str(error), id="calibration.E002"))
    return errors
