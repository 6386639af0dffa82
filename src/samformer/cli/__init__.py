"""The `samformer` command line: the entry point (`main`), its error contract (`failures`), process settings
(`allocator`) and one module per subcommand, which translate arguments into calls of the layers below.

May import every other layer; nothing imports it.
"""
