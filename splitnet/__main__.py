"""``python -m splitnet`` is ``splitrun``."""

import sys

from splitnet.framework.cli import main

sys.exit(main())
