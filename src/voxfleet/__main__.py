from voxfleet.cli import main

raise SystemExit(main())
