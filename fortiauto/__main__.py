"""``python -m fortiauto``."""

from fortiauto.cli import main

main()
