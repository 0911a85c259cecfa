"""``python -m synsample``: the command line."""

import sys

from synsample.cli import main

sys.exit(main())
