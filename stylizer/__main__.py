"""``python -m stylizer``: see stylizer.cli."""

from stylizer.cli import main

raise SystemExit(main())
