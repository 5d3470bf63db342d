"""`python -m fairdesk` runs the command line."""

from fairdesk.cli import main

main()
