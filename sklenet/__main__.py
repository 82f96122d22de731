"""``python -m sklenet``: the same as the ``sklenet`` command."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
