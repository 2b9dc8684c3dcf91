"""One module per subcommand: a plain function of keyword arguments returning an exit code."""
