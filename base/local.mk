# base/: the floor every room stands on (see DESIGN.md "Layout"): whole-file I/O and
# spawn-and-capture, the one directory-fd walker and path-component validator, the hex codec,
# the typed-field hasher, the clock, the error formatter and the sandbox roots (roots.h). base/
# includes nothing from the rooms above it.
libcachepot_a_SOURCES += base/io.c base/io.h base/hex.c base/hex.h base/clock.c base/clock.h \
	base/error.c base/error.h base/field_hasher.c base/field_hasher.h \
	base/path.c base/path.h base/roots.h base/banned.h

check_PROGRAMS += tests/base/test_hex tests/base/test_error tests/base/test_field_hasher \
	tests/base/test_path
TESTS += tests/base/test_hex tests/base/test_error tests/base/test_field_hasher tests/base/test_path
tests_base_test_hex_SOURCES = tests/base/test_hex.c
tests_base_test_hex_CFLAGS = $(TEST_CFLAGS)
tests_base_test_hex_LDADD = $(TEST_LDADD)
tests_base_test_error_SOURCES = tests/base/test_error.c
tests_base_test_error_CFLAGS = $(TEST_CFLAGS)
tests_base_test_error_LDADD = $(TEST_LDADD)
tests_base_test_field_hasher_SOURCES = tests/base/test_field_hasher.c
tests_base_test_field_hasher_CFLAGS = $(TEST_CFLAGS)
tests_base_test_field_hasher_LDADD = $(TEST_LDADD)
tests_base_test_path_SOURCES = tests/base/test_path.c
tests_base_test_path_CFLAGS = $(TEST_CFLAGS)
tests_base_test_path_LDADD = $(TEST_LDADD)
