# fs/: the store and cachepot-fs (see DESIGN.md "The store", "The mount").
libcachepot_a_SOURCES += fs/store.c fs/store.h fs/manifest.c fs/manifest.h fs/fsck.c fs/fsck.h

check_PROGRAMS += tests/fs/test_store
TESTS += tests/fs/test_store
tests_fs_test_store_SOURCES = tests/fs/test_store.c
tests_fs_test_store_CFLAGS = $(TEST_CFLAGS)
tests_fs_test_store_LDADD = $(TEST_LDADD)
