#!/usr/bin/env python3
"""One benchmark task, run by bench.py inside a sandbox host namespace.

Usage: worker.py JSON  (the task's parameters); prints the result as JSON.
"""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from benchlib import tasks  # noqa: E402

if __name__ == "__main__":
    json.dump(tasks.main(json.loads(sys.argv[1])), sys.stdout)
