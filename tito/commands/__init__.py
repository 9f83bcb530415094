"""One file per command group; each registers its subcommands on the main parser."""
