from sample_app.server import main

raise SystemExit(main())
