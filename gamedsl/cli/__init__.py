"""The `gamedsl` command (typer + rich): results on stdout, diagnostics on stderr."""
