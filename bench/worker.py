#!/usr/bin/env python3
"""One benchmark task, run by bench.py inside a sandbox host namespace.

Usage: worker.py JSON             the task's parameters; prints its result as JSON.
       worker.py --session JSON   a session (see tasks.session): replies, one
                                  JSON line each, to requests read one JSON
                                  line each from stdin.
"""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from benchlib import tasks  # noqa: E402


def reply(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    if sys.argv[1] == "--session":
        tasks.session(json.loads(sys.argv[2]), (json.loads(line) for line in sys.stdin), reply)
    else:
        json.dump(tasks.main(json.loads(sys.argv[1])), sys.stdout)
