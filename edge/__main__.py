"""`python -m edge` is the `gate` command."""

from edge.cli import main

raise SystemExit(main())
