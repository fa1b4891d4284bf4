# daemon/: cachepotd, the worker that verifies, compiles and publishes (see DESIGN.md "The daemon").
libcachepot_a_SOURCES += daemon/settings.c daemon/settings.h daemon/store_gc.c daemon/store_gc.h \
	daemon/daemon.h daemon/pool.c daemon/pool.h daemon/job_run.c daemon/job_run.h \
	daemon/toolchain_unpack.c daemon/toolchain_unpack.h daemon/toolchain_merge.c \
	daemon/toolchain_merge.h daemon/server.c daemon/server.h \
	daemon/listen.c daemon/listen.h daemon/etag.c daemon/etag.h daemon/peers.c daemon/peers.h \
	daemon/upload.c daemon/upload.h daemon/direct_publish.c daemon/direct_publish.h \
	daemon/verify.c daemon/verify.h

sbin_PROGRAMS += cachepotd
cachepotd_SOURCES = daemon/main.c
cachepotd_LDADD = libcachepot.a $(DEP_LIBS)

# Test helper: the key of a job JSON, a toolchain tree's id (tests/daemon/*.sh).
check_PROGRAMS += tests/daemon/daemon-helper
tests_daemon_daemon_helper_SOURCES = tests/daemon/daemon-helper.c
tests_daemon_daemon_helper_LDADD = libcachepot.a $(DEP_LIBS)

# Test client: hostile bodies and idle connections on the socket (tests/daemon/bodies.sh).
check_PROGRAMS += tests/daemon/flood
tests_daemon_flood_SOURCES = tests/daemon/flood.c
tests_daemon_flood_LDADD = libcachepot.a $(DEP_LIBS)

check_PROGRAMS += tests/daemon/test_listen
tests_daemon_test_listen_SOURCES = tests/daemon/test_listen.c
tests_daemon_test_listen_CFLAGS = $(TEST_CFLAGS)
tests_daemon_test_listen_LDADD = $(TEST_LDADD)

TESTS += tests/daemon/test_listen tests/daemon/jobs.sh tests/daemon/hostile.sh tests/daemon/concurrency.sh \
	tests/daemon/kill.sh tests/daemon/toolchain.sh tests/daemon/network.sh tests/daemon/bodies.sh \
	tests/daemon/toolchain-unused.sh tests/daemon/uploads.sh
EXTRA_DIST += tests/daemon/lib.sh tests/daemon/jobs.sh tests/daemon/hostile.sh \
	tests/daemon/concurrency.sh tests/daemon/kill.sh tests/daemon/toolchain.sh tests/daemon/network.sh \
	tests/daemon/bodies.sh tests/daemon/toolchain-unused.sh tests/daemon/uploads.sh daemon/cachepotd.conf.example contrib/cachepotd.service contrib/cachepotd.socket
dist_man_MANS += daemon/cachepotd.8
TESTS += tests/daemon/toolchain-dirs.sh
EXTRA_DIST += tests/daemon/toolchain-dirs.sh
TESTS += tests/daemon/unpublished.sh
EXTRA_DIST += tests/daemon/unpublished.sh
TESTS += tests/daemon/load.sh
EXTRA_DIST += tests/daemon/load.sh
TESTS += tests/daemon/verify.sh
EXTRA_DIST += tests/daemon/verify.sh
check_PROGRAMS += tests/daemon/test_verify
TESTS += tests/daemon/test_verify
tests_daemon_test_verify_SOURCES = tests/daemon/test_verify.c
tests_daemon_test_verify_CFLAGS = $(TEST_CFLAGS)
tests_daemon_test_verify_LDADD = $(TEST_LDADD)
TESTS += tests/daemon/crash-daemon.sh
EXTRA_DIST += tests/daemon/crash-daemon.sh
