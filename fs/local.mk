# fs/: the store and cachepot-fs (see DESIGN.md "The store", "The mount").
libcachepot_a_SOURCES += fs/store.c fs/store.h fs/gc.c fs/gc.h fs/manifest.c fs/manifest.h fs/fsck.c fs/fsck.h \
	fs/source.h fs/source_local.c fs/source_remote.c fs/tree.c fs/tree.h \
	fs/prekey_list.c fs/prekey_list.h fs/fsync_set.c fs/fsync_set.h

check_PROGRAMS += tests/fs/test_store
TESTS += tests/fs/test_store
tests_fs_test_store_SOURCES = tests/fs/test_store.c
tests_fs_test_store_CFLAGS = $(TEST_CFLAGS)
tests_fs_test_store_LDADD = $(TEST_LDADD)

bin_PROGRAMS += cachepot-fs
cachepot_fs_SOURCES = fs/cachepot-fs.c
cachepot_fs_LDADD = libcachepot.a $(DEP_LIBS)

check_PROGRAMS += tests/fs/store-tool
tests_fs_store_tool_SOURCES = tests/fs/store-tool.c
tests_fs_store_tool_LDADD = libcachepot.a $(DEP_LIBS)
TESTS += tests/fs/mount.sh
EXTRA_DIST += tests/fs/mount.sh
TESTS += tests/fs/crash.sh tests/fs/power-cut.sh
EXTRA_DIST += tests/fs/crash.sh tests/fs/power-cut.sh

dist_man_MANS += fs/cachepot-fs.1 fs/cachepot-fsck.8
EXTRA_DIST += contrib/cachepot-fs.service bench/fs-bench.sh
TESTS += tests/fs/remote.sh
EXTRA_DIST += tests/fs/remote.sh

check_PROGRAMS += tests/fs/test_prekey_list
TESTS += tests/fs/test_prekey_list
tests_fs_test_prekey_list_SOURCES = tests/fs/test_prekey_list.c
tests_fs_test_prekey_list_CFLAGS = $(TEST_CFLAGS)
tests_fs_test_prekey_list_LDADD = $(TEST_LDADD)

check_PROGRAMS += tests/fs/test_gc
TESTS += tests/fs/test_gc
tests_fs_test_gc_SOURCES = tests/fs/test_gc.c
tests_fs_test_gc_CFLAGS = $(TEST_CFLAGS)
tests_fs_test_gc_LDADD = $(TEST_LDADD)
TESTS += tests/fs/gc.sh
EXTRA_DIST += tests/fs/gc.sh
TESTS += tests/fs/listing.sh
EXTRA_DIST += tests/fs/listing.sh
