"""``python -m shift`` runs the ``shift`` console script."""

import sys

from shift.cli import main

sys.exit(main())
