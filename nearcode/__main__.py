from nearcode.cli.main import main

raise SystemExit(main())
