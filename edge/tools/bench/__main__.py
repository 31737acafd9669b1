"""`python -m edge.tools.bench WHAT [options]`: how `all` runs each benchmark in a process of its own."""

from edge.tools.bench import main

raise SystemExit(main())
