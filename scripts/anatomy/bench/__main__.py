"""``python -m anatomy.bench``: see :mod:`anatomy.bench.cli`."""

import sys

from anatomy.bench.cli import main

sys.exit(main())
