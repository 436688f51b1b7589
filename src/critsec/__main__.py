"""``python -m critsec``: the ``critsec`` command."""

import sys

from .cli import main

sys.exit(main())
