"""``python -m fcn_scratch ...`` is the ``fcn-scratch`` command."""

import sys

from .cli import main

sys.exit(main())
