from django import forms

from gsafollowup.errors import BadInput

from .services import clean_coordinates, clean_ivorn, clean_url


class NewEventForm(forms.Form):
    """The web form for a new alert; the same checks as the legacy endpoint."""

    EventID = forms.CharField(
        label="IVORN", max_length=255, help_text="e.g. ivo://Gaia24abc (spaces allowed)"
    )
    ra = forms.CharField(label="RA (deg)")
    dec = forms.CharField(label="Dec (deg)")
    url = forms.CharField(label="URL", required=False, max_length=500)
    comment = forms.CharField(required=False, max_length=5000, widget=forms.Textarea(attrs={"rows": 2}))

    def clean(self):
        data = super().clean()
        try:
            if "EventID" in data:
                clean_ivorn(data["EventID"])
            if "ra" in data and "dec" in data:
                clean_coordinates(data["ra"], data["dec"])
            clean_url(data.get("url"))
        except BadInput as error:
            raise forms.ValidationError(error.message) from None
        return data
