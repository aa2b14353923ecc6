"""``python -m latentspace.cli``: the same as the ``latentspace`` command."""

import sys

from . import main

if __name__ == "__main__":
    sys.exit(main())
