"""``python -m spurlab`` is the ``spurlab`` command."""

from spurlab.cli.entry import main

main()
