"""``python -m napari_lazyproc.cli``: the ``napari-lazyproc`` command line."""

import sys

from . import main

if __name__ == "__main__":
    sys.exit(main())
