"""Tests of the playground; a package so ``python -m tests.fake_elumenta`` works."""
