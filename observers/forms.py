from django import forms


class HashtagLoginForm(forms.Form):
    hashtag = forms.CharField(max_length=200, strip=True, widget=forms.PasswordInput(render_value=False))
