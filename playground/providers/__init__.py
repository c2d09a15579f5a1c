"""Model providers behind one interface (see :mod:`playground.providers.base`)."""
