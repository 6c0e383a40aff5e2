"""The demo that `make run` loads: real alerts and a working, freshly issued hashtag."""

import re
from io import StringIO

from django.core.management import call_command

from alerts.models import Alert
from observers.models import Hashtag


def run_demo() -> str:
    out = StringIO()
    call_command("demo", stdout=out)
    last = out.getvalue().strip().splitlines()[-1]
    match = re.fullmatch(r"Demo hashtag: (DEMO_[0-9a-f]{32})", last)
    assert match, last
    return match.group(1)


def test_demo_loads_real_alerts_and_prints_a_working_hashtag(db, client):
    first = run_demo()
    assert Alert.objects.count() == 676
    second = run_demo()
    assert Alert.objects.count() == 676
    # Only the newest demo hashtag works.
    assert Hashtag.objects.find(first) is None
    assert Hashtag.objects.find(second) is not None
    response = client.post(
        "/cgi/newevent", {"EventID": "ivo://demo-check", "ra": "1", "dec": "2", "hashtag": second}
    )
    assert response.status_code == 201
