"""``manage.py run_worker`` for the worker tests, with a frame that never ends on its own.

A poison frame (one that takes its worker down every time, as an out-of-memory kill would) is
simulated by the test killing the worker that runs it. For that to be certain rather than a race
with a frame that calibrates in 40 ms, the frame named by ``GSA_TEST_HELD_FRAME`` is held before
anything is stored until the test kills its worker. Every other frame runs the real code.
"""

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gsafollowup.settings")


def main() -> None:
    import django

    django.setup()
    from django.core.management import execute_from_command_line

    import calibration.tasks as tasks

    held = os.environ.get("GSA_TEST_HELD_FRAME")
    calibrate = tasks.followup_calibrate

    def holding(**arguments):
        if held and arguments.get("filename") == held:
            time.sleep(3600)  # until the test kills this worker
        return calibrate(**arguments)

    tasks.followup_calibrate = holding
    execute_from_command_line(["manage.py", *sys.argv[1:]])


if __name__ == "__main__":
    main()
