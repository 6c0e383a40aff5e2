"""Property-based tests of the input layer: no input makes it raise anything but the domain error.

The properties live in gsafollowup/fuzzing.py so that ``manage.py fuzz`` runs the very same ones
for longer; here each runs for a bounded number of generated inputs.
"""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from hypothesis import strategies as st

from gsafollowup.fuzzing import Outcome, Property, properties, run_property

EXAMPLES = 120


@pytest.mark.parametrize("prop", properties(), ids=lambda p: p.name)
def test_property_holds(prop):
    outcome = Outcome(prop.name)
    run_property(prop, EXAMPLES, seed_value=20261203, outcome=outcome)
    assert outcome.failure is None, "\n".join([outcome.failure, *outcome.report])
    assert outcome.tried >= EXAMPLES // 2


def test_a_failing_property_is_reported_with_its_minimal_input():
    def no_ff_byte(data: bytes) -> None:
        if b"\xff" in data:
            raise ValueError("found the byte")

    outcome = Outcome("demo")
    run_property(Property("demo", no_ff_byte, st.binary(min_size=1, max_size=50)), 500, 1, outcome)
    assert outcome.failure == "ValueError: found the byte"
    assert outcome.minimal == b"\xff"
    assert any("Failing test case" in line for line in outcome.report), outcome.report


def test_fuzz_command_prints_inputs_tried():
    out = StringIO()
    call_command("fuzz", "--examples", "200", "--only", "list parameters", stdout=out)
    text = out.getvalue()
    assert "alert list parameters" in text and "nothing found" in text
    tried = int(text.strip().splitlines()[-1].split(" inputs tried")[0].replace(",", ""))
    assert tried >= 200


def test_fuzz_command_refuses_an_unknown_property():
    with pytest.raises(CommandError, match="no property matches"):
        call_command("fuzz", "--examples", "10", "--only", "no such thing", stdout=StringIO())
