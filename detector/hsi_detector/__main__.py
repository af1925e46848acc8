"""Entry point of `python -m hsi_detector`."""

import sys

from hsi_detector.server import main

if __name__ == "__main__":
    sys.exit(main())
