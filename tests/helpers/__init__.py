"""Helpers for the functional tests: users, a busybox rootfs, bundles, the runtime under test,
and leak checks. Plain functions; the fixtures that use them live in tests/conftest.py."""
