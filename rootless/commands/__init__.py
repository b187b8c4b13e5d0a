"""One module per verb: each parses nothing (rootless.cli did) and prints what the verb prints."""
