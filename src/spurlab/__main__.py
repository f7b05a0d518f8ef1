"""``python -m spurlab`` is the ``spurlab`` command."""

from spurlab.cli.app import main

main()
