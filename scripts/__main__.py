from dialogforge.cli.main import main

raise SystemExit(main())
