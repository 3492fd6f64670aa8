"""``python -m simloss`` runs the command line."""

import sys

from simloss.cli import main

sys.exit(main())
