"""``python -m splitnet`` is ``splitrun``."""

import sys

from splitnet.commands.cli import main

sys.exit(main())
