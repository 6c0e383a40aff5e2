"""Messages that used to mislead the observer now say what to change."""

import pytest

from calibration.models import FollowupPoint
from tests.test_upload import upload


@pytest.mark.parametrize("radius", ["1e-5", "1e-4"])
def test_a_tiny_match_dist_names_the_radius_used_not_5_arcsec(observatory, star_alert, client, media, radius):
    _, hashtag = observatory
    response = upload(client, hashtag, matchDist=radius)
    body = response.content.decode()
    assert response.status_code == 422, body
    assert f"within {float(radius):.2g} arcsec" in body and "larger matchDist" in body, body
    assert "within 5 arcsec" not in body and len(body) < 100
    assert FollowupPoint.objects.count() == 0
