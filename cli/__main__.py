import sys

from edgebatch.cli.main import main

sys.exit(main())
