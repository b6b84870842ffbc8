"""``python -m fgd_core.cli``: the ``fgd`` command."""

from fgd_core.cli.main import main

main()
