"""`python -m ifkd`: the same as the `ifkd` command."""

import sys

from ifkd.cli import main

sys.exit(main())
