"""``python -m actadapt``: the ``actadapt`` command."""

from .cli import main

raise SystemExit(main())
