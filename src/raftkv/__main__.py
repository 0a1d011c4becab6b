"""``python -m raftkv``: the same as the ``raftkv`` command."""

from raftkv.cli import main

raise SystemExit(main())
