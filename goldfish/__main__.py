from goldfish.cli import main

raise SystemExit(main())
