# hash/: the key (see DESIGN.md "The key").
libcachepot_a_SOURCES += hash/digest.c hash/digest.h hash/args.c hash/args.h \
	hash/job.c hash/job.h hash/toolchain.c hash/toolchain.h hash/toolchain_archive.c hash/link_tree.c \
	hash/pathmap.c hash/pathmap.h hash/depinfo.c hash/depinfo.h hash/invocation.c hash/invocation.h \
	hash/prekey.c hash/prekey.h hash/c_args.c hash/c_args.h hash/c_invocation.c hash/c_invocation.h

check_PROGRAMS += tests/hash/test_digest
TESTS += tests/hash/test_digest
tests_hash_test_digest_SOURCES = tests/hash/test_digest.c
tests_hash_test_digest_CFLAGS = $(TEST_CFLAGS)
tests_hash_test_digest_LDADD = $(TEST_LDADD)

check_PROGRAMS += tests/hash/test_args tests/hash/test_depinfo tests/hash/test_job
TESTS += tests/hash/test_args tests/hash/test_depinfo tests/hash/test_job
tests_hash_test_args_SOURCES = tests/hash/test_args.c
tests_hash_test_args_CFLAGS = $(TEST_CFLAGS)
tests_hash_test_args_LDADD = $(TEST_LDADD)
tests_hash_test_depinfo_SOURCES = tests/hash/test_depinfo.c
tests_hash_test_depinfo_CFLAGS = $(TEST_CFLAGS)
tests_hash_test_depinfo_LDADD = $(TEST_LDADD)
tests_hash_test_job_SOURCES = tests/hash/test_job.c
tests_hash_test_job_CFLAGS = $(TEST_CFLAGS)
tests_hash_test_job_LDADD = $(TEST_LDADD)

check_PROGRAMS += tests/hash/test_c_args
TESTS += tests/hash/test_c_args
tests_hash_test_c_args_SOURCES = tests/hash/test_c_args.c
tests_hash_test_c_args_CFLAGS = $(TEST_CFLAGS)
tests_hash_test_c_args_LDADD = $(TEST_LDADD)

TESTS += tests/hash/key-changes.sh tests/hash/key-stability.sh
EXTRA_DIST += tests/hash/key-changes.sh tests/hash/key-stability.sh tests/data/invocations-debug.jsonl \
	tests/data/invocations-release.jsonl tests/data/record-wrapper.py tests/data/record-invocations.sh

check_PROGRAMS += tests/hash/test_invocation tests/hash/test_link_tree
TESTS += tests/hash/test_invocation tests/hash/test_link_tree
tests_hash_test_link_tree_SOURCES = tests/hash/test_link_tree.c
tests_hash_test_link_tree_CFLAGS = $(TEST_CFLAGS)
tests_hash_test_link_tree_LDADD = $(TEST_LDADD)
tests_hash_test_invocation_SOURCES = tests/hash/test_invocation.c
tests_hash_test_invocation_CFLAGS = $(TEST_CFLAGS)
tests_hash_test_invocation_LDADD = $(TEST_LDADD)

check_PROGRAMS += tests/hash/test_cache_files
TESTS += tests/hash/test_cache_files
tests_hash_test_cache_files_SOURCES = tests/hash/test_cache_files.c
tests_hash_test_cache_files_CFLAGS = $(TEST_CFLAGS)
tests_hash_test_cache_files_LDADD = $(TEST_LDADD)

check_PROGRAMS += tests/hash/test_c_invocation
TESTS += tests/hash/test_c_invocation
tests_hash_test_c_invocation_SOURCES = tests/hash/test_c_invocation.c
tests_hash_test_c_invocation_CFLAGS = $(TEST_CFLAGS)
tests_hash_test_c_invocation_LDADD = $(TEST_LDADD)

check_PROGRAMS += tests/hash/test_c_tree
TESTS += tests/hash/test_c_tree
tests_hash_test_c_tree_SOURCES = tests/hash/test_c_tree.c
tests_hash_test_c_tree_CFLAGS = $(TEST_CFLAGS)
tests_hash_test_c_tree_LDADD = $(TEST_LDADD)

check_PROGRAMS += tests/hash/test_toolchain_tree
TESTS += tests/hash/test_toolchain_tree
tests_hash_test_toolchain_tree_SOURCES = tests/hash/test_toolchain_tree.c
tests_hash_test_toolchain_tree_CFLAGS = $(TEST_CFLAGS)
tests_hash_test_toolchain_tree_LDADD = $(TEST_LDADD)

TESTS += tests/hash/secrets.sh
EXTRA_DIST += tests/hash/secrets.sh
