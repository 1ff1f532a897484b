"""``python -m workers``: the same as ``shift worker``."""

import sys

from workers.worker_command import main

sys.exit(main())
