"""``python -m workers``: the same as ``shift worker``."""

import sys

from workers.command import main

sys.exit(main())
