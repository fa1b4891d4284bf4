# client/: the rustc wrapper cachepot (see DESIGN.md "The wrapper").
bin_PROGRAMS += cachepot
cachepot_SOURCES = client/main.c client/settings.c client/settings.h client/explain.c client/explain.h \
	client/stats.c client/stats.h client/wrapper.c client/wrapper.h \
	client/daemon_client.c client/daemon_client.h
cachepot_LDADD = libcachepot.a $(DEP_LIBS)

TESTS += tests/client/cargo-build.sh
EXTRA_DIST += tests/client/cargo-build.sh
dist_man_MANS += client/cachepot.1
EXTRA_DIST += contrib/cargo-config.toml
