"""One module per `hqm` sub-command: each defines ``add_parser(subparsers)`` and ``run(args)``."""
