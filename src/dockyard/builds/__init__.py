"""Automated builds: source links, build rules, triggers, the build pipeline and the executors that run it."""
