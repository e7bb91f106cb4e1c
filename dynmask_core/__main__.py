"""``python -m dynmask_core``: see :mod:`dynmask_core.cli`."""

import sys

from dynmask_core.cli import main

sys.exit(main())
