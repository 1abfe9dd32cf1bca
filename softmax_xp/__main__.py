"""``python -m softmax_xp``: the same as the ``softmax-xp`` command."""

import sys

from .cli import main

sys.exit(main())
