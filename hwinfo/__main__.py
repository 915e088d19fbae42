"""`python -m hwinfo` runs the hwinfo command."""

import sys

from hwinfo.cli import main

sys.exit(main())
