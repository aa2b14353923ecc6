"""``python -m latentspace``: the same as the ``latentspace`` command."""

import sys

from latentspace.cli import main

if __name__ == "__main__":
    sys.exit(main())
