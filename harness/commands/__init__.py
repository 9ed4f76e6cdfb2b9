"""One module per ``harness`` subcommand, each a thin ``run(args) -> exit code``: options → pipeline.

``harness.cli`` parses the command line and imports the chosen module only then.
"""
