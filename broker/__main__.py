"""``python -m broker``: the same as ``shift broker``."""

import argparse
import sys

from broker.broker_command import configure, run

parser = argparse.ArgumentParser(prog="shift broker", description="Run the shift broker.")
configure(parser)
sys.exit(run(parser.parse_args()))
