"""`python -m opsagent` runs the same command as `opsagent`."""

from opsagent.cli import main

main()
