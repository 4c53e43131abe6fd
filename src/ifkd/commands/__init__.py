"""One module per `ifkd` verb; each exposes `register(subparsers)`."""
