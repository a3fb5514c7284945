"""The `tvmc` command line: `driver.main` and one module per subcommand.

Importing this package is cheap on purpose: TVM is imported only when a subcommand runs.
"""
