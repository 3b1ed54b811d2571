from mlsearch.cli import main

raise SystemExit(main())
