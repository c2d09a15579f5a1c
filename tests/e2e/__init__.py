"""Browser end-to-end tests (marked ``browser``)."""
