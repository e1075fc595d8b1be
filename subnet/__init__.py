"""Tessera shared library: config, model, data, compression, outer step."""
