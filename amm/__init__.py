"""dTAO economics: pools, emission, subnet shares, injection, distribution; simulator CLI."""
