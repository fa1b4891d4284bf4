# client/: the rustc wrapper cachepot (see DESIGN.md "The wrapper").
# cachepot starts on every rustc invocation, so it links only what a hit needs (OpenSSL, jansson);
# cachepot-submit, started on a miss, has the HTTP client and the toolchain archiver.
bin_PROGRAMS += cachepot
cachepot_SOURCES = client/main.c client/settings.c client/settings.h client/explain.c client/explain.h \
	client/stats.c client/stats.h client/wrapper.c client/wrapper.h client/submit.c client/submit.h \
	client/compiler.c client/compiler.h client/cache_dir.c client/cache_dir.h \
	client/verify.c client/verify.h
cachepot_LDADD = libcachepot.a $(CRYPTO_LIBS) $(JANSSON_LIBS)

pkglibexec_PROGRAMS += cachepot-submit
cachepot_submit_SOURCES = client/submit_main.c client/daemon_client.c client/daemon_client.h \
	client/gc.c client/gc.h client/settings.c client/settings.h
cachepot_submit_LDADD = libcachepot.a $(CRYPTO_LIBS) $(JANSSON_LIBS) $(CURL_LIBS) $(ARCHIVE_LIBS)

TESTS += tests/client/cargo-build.sh tests/client/link-units.sh tests/client/cc-crate.sh tests/client/remote.sh \
	tests/client/cache-dir.sh tests/client/hit-verify.sh tests/client/direct-published.sh tests/client/cc-cache.sh
EXTRA_DIST += tests/client/cargo-build.sh tests/client/link-units.sh tests/client/cc-crate.sh tests/client/remote.sh \
	tests/client/cache-dir.sh tests/client/hit-verify.sh tests/client/direct-published.sh tests/client/cc-cache.sh \
	tests/client/cc-cache-workspace/Cargo.toml tests/client/cc-cache-workspace/.cargo/config.toml \
	tests/client/cc-cache-workspace/build.rs tests/client/cc-cache-workspace/src/main.rs \
	tests/client/cc-cache-workspace/csrc/squares.c tests/client/cc-cache-workspace/csrc/squares.h \
	tests/client/cc-cache-workspace/csrc/cubes.c tests/client/cc-cache-workspace/csrc/cubes.h \
	tests/client/cc-cache-workspace/csrc/mix.c tests/client/cc-cache-workspace/csrc/triangle.cpp \
	tests/client/cc-workspace/Cargo.toml tests/client/cc-workspace/.cargo/config.toml \
	tests/client/cc-workspace/build.rs tests/client/cc-workspace/src/main.rs \
	tests/client/cc-workspace/csrc/squares.c tests/client/cc-workspace/csrc/squares.h \
	tests/client/cc-workspace/csrc/triangle.cpp
dist_man_MANS += client/cachepot.1
EXTRA_DIST += contrib/cargo-config.toml

check_PROGRAMS += tests/client/test_compiler
TESTS += tests/client/test_compiler
tests_client_test_compiler_SOURCES = tests/client/test_compiler.c client/compiler.c client/compiler.h
tests_client_test_compiler_CFLAGS = $(TEST_CFLAGS)
tests_client_test_compiler_LDADD = $(TEST_LDADD)

check_PROGRAMS += tests/client/test_cache_dir
TESTS += tests/client/test_cache_dir
tests_client_test_cache_dir_SOURCES = tests/client/test_cache_dir.c client/cache_dir.c client/cache_dir.h \
	client/settings.c client/settings.h
tests_client_test_cache_dir_CFLAGS = $(TEST_CFLAGS)
tests_client_test_cache_dir_LDADD = $(TEST_LDADD)
