# hash/: the key (see DESIGN.md "The key").
libcachepot_a_SOURCES += hash/digest.c hash/digest.h hash/args.c hash/args.h \
	hash/job.c hash/job.h hash/toolchain.c hash/toolchain.h

check_PROGRAMS += tests/hash/test_digest
TESTS += tests/hash/test_digest
tests_hash_test_digest_SOURCES = tests/hash/test_digest.c
tests_hash_test_digest_CFLAGS = $(TEST_CFLAGS)
tests_hash_test_digest_LDADD = $(TEST_LDADD)
