"""`python -m densebench.cli`: the `densebench` console script."""

import sys

from densebench.cli import main

sys.exit(main())
