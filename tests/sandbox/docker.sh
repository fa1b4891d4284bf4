#!/bin/sh
# The sandbox's run and escape catalogue (test_sandbox) against the docker backend. Skipped,
# with the reason, when dockerd does not answer (CACHEPOT_DOCKER_SOCKET, else
# /var/run/docker.sock). Costs about 1 s per case more than bwrap (a container's start-up)
# and ~10 s once to import the test toolchain as an image.
CACHEPOT_TEST_SANDBOX=docker exec "${top_builddir:-.}/tests/sandbox/test_sandbox"
