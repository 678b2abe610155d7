"""`python -m treadle.cli …`, the same as the `treadle` script."""

from treadle.cli import main

main()
