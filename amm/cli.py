"""`amm` command line (placeholder until the amm issue lands)."""
def main(argv=None) -> int:
    return 0
