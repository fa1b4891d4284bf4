# sandbox/: run one untrusted compile with nothing of the host to reach (see sandbox/sandbox.h).
libcachepot_a_SOURCES += sandbox/sandbox.c sandbox/sandbox.h
EXTRA_DIST += tests/sandbox/make-toolchain.sh
