"""``python -m snapshot_pipeline.cli``: the same as the ``snapshots`` script."""
import sys

from . import main

sys.exit(main())
