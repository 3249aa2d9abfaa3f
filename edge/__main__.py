"""`python -m edgebatch.edge --config agent.toml`: the agent without the umbrella CLI."""

import sys

from edgebatch.edge.cli import main

sys.exit(main(sys.argv[1:]))
