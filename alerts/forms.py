from django import forms

from gsafollowup.errors import BadInput

from .services import clean_coordinates, clean_ivorn, clean_url


class NewEventForm(forms.Form):
    """The web form for a new alert; the same checks as the legacy endpoint."""

    EventID = forms.CharField(
        label="IVORN or name",
        max_length=255,
        help_text="e.g. ivo://Gaia24abc (spaces allowed); a TNS or Gaia name alone (2024abc, Gaia24abc) "
        "with RA and Dec left empty takes its position from the last harvest",
    )
    ra = forms.CharField(label="RA (deg)", required=False)
    dec = forms.CharField(label="Dec (deg)", required=False)
    url = forms.CharField(label="URL", required=False, max_length=500)
    comment = forms.CharField(required=False, max_length=5000, widget=forms.Textarea(attrs={"rows": 2}))

    def clean(self):
        data = super().clean()
        try:
            if "EventID" in data:
                clean_ivorn(data["EventID"])
            if data.get("ra") or data.get("dec"):
                clean_coordinates(data.get("ra"), data.get("dec"))
            clean_url(data.get("url"))
        except BadInput as error:
            raise forms.ValidationError(error.message) from None
        return data
