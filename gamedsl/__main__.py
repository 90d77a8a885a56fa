"""`python -m gamedsl` runs the command-line interface."""

from gamedsl.cli.app import main

if __name__ == "__main__":
    main()
