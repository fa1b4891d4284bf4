# fuzz/: libFuzzer targets for the parsers of outside input (STYLE: "a fuzzer for every parser
# of outside input"). They are built and run only on request, never by `make all`, `make check`
# or CI, because they need clang and take minutes:
#
#   make fuzz                        build fuzz/fuzz_{args,depinfo,job,manifest,etag,toolchain,prekey_list}
#                                    with clang
#   make fuzz-run FUZZ_SECONDS=60    run each for that long; fails if any finds a crash
#   make fuzz-run FUZZ_TARGETS=job FUZZ_FLAGS='-jobs=2 -workers=2'   one target, extra flags
#
# Targets (one LLVMFuzzerTestOneInput each; the file's comment says what it checks):
#   args      rustc_args_parse on NUL-separated arguments (@argfile arguments dropped: no file
#             system access) and rustc_argfile_split on the raw bytes     (hash/args.c)
#   depinfo   depinfo_parse on the raw bytes                               (hash/depinfo.c)
#   job       json_loadb + job_from_json as the daemon does, then job_key, job_expected_outputs
#             and a job_to_json round trip                                 (hash/job.c)
#   manifest  manifest_parse on the raw bytes, and on the input signed with a test key so the
#             checks behind the signature are reached                      (fs/manifest.c)
#   etag      etag_matches on an If-None-Match value: a 304 only for a header naming the tag
#                                                                          (daemon/etag.c)
#   toolchain toolchain_unpack on an uploaded archive, unpacked into a scratch directory under
#             $TMPDIR or /dev/shm: nothing escapes toolchains/, no temporary tree survives, an
#             accepted tree has the id asked for               (daemon/toolchain_unpack.c)
#   prekey_list  prekey_lists_verify on the raw bytes, and on the input signed with a test key
#             so the checks behind the signature are reached         (fs/prekey_list.c)
#
# Each target is compiled from the library sources it needs (not libcachepot.a, which is built
# with gcc and without coverage instrumentation) with -fsanitize=fuzzer,address,undefined; UBSan
# findings abort, so they count as crashes. fuzz-run copies fuzz/corpus/<target>/ (small seeds
# in the source tree, never written to) into fuzz/work/<target>/ in the build tree, runs the
# target on it with fuzz/<target>.dict, logs to fuzz/work/<target>.log and writes any crash
# input to fuzz/artifacts/<target>-crash-*. Replay one with ./fuzz/fuzz_<target> FILE.
#
# Seeds: args/ are cargo's invocations from tests/data/invocations-debug.jsonl, NUL-separated,
# plus an @argfile body; depinfo/ is rustc --emit=dep-info output (escaped spaces, env-deps,
# binary deps); job/ is the wire JSON of `cachepot --explain`; manifest/ is a signed manifest;
# toolchain/ is one small tree (a name past ustar's 100 bytes among its files) as GNU tar
# writes it in three formats: tar -b 1 --sort=name --owner=0 --group=0 --numeric-owner
# --mtime=@0 --format={pax,gnu,ustar} (pax with --pax-option=delete=atime,delete=ctime).

FUZZ_CC = clang
FUZZ_SECONDS = 60
FUZZ_FLAGS =
FUZZ_TARGETS = args depinfo job manifest etag toolchain prekey_list
FUZZ_CFLAGS = -std=gnu11 -g -O1 -fno-omit-frame-pointer -fsanitize=fuzzer,address,undefined \
	-fno-sanitize-recover=undefined -Wall -Wextra -Wno-unused-parameter
FUZZ_CPPFLAGS = -I$(top_builddir) -I$(top_srcdir) -include $(srcdir)/base/banned.h \
	$(CRYPTO_CFLAGS) $(JANSSON_CFLAGS)
FUZZ_LIBS = $(JANSSON_LIBS) $(CRYPTO_LIBS)

FUZZ_ARGS_SRC = $(srcdir)/fuzz/fuzz_args.c $(srcdir)/hash/args.c $(srcdir)/base/io.c
FUZZ_DEPINFO_SRC = $(srcdir)/fuzz/fuzz_depinfo.c $(srcdir)/hash/depinfo.c
FUZZ_JOB_SRC = $(srcdir)/fuzz/fuzz_job.c $(srcdir)/hash/job.c $(srcdir)/hash/args.c \
	$(srcdir)/hash/digest.c $(srcdir)/base/hex.c $(srcdir)/base/io.c $(srcdir)/base/error.c \
	$(srcdir)/base/field_hasher.c $(srcdir)/base/path.c
FUZZ_MANIFEST_SRC = $(srcdir)/fuzz/fuzz_manifest.c $(srcdir)/fs/manifest.c $(srcdir)/hash/digest.c \
	$(srcdir)/base/hex.c $(srcdir)/base/path.c $(srcdir)/base/io.c
FUZZ_ETAG_SRC = $(srcdir)/fuzz/fuzz_etag.c $(srcdir)/daemon/etag.c
FUZZ_TOOLCHAIN_SRC = $(srcdir)/fuzz/fuzz_toolchain.c $(srcdir)/daemon/toolchain_unpack.c \
	$(srcdir)/hash/toolchain.c $(srcdir)/hash/link_tree.c $(srcdir)/hash/pathmap.c \
	$(srcdir)/hash/digest.c $(srcdir)/fs/tree.c $(srcdir)/base/field_hasher.c $(srcdir)/base/io.c \
	$(srcdir)/base/hex.c $(srcdir)/base/error.c $(srcdir)/base/path.c
FUZZ_PREKEY_LIST_SRC = $(srcdir)/fuzz/fuzz_prekey_list.c $(srcdir)/fs/prekey_list.c \
	$(srcdir)/fs/manifest.c $(srcdir)/hash/prekey.c $(srcdir)/hash/job.c $(srcdir)/hash/args.c \
	$(srcdir)/hash/digest.c $(srcdir)/base/hex.c $(srcdir)/base/io.c $(srcdir)/base/error.c \
	$(srcdir)/base/field_hasher.c $(srcdir)/base/path.c

fuzz/fuzz_args: $(FUZZ_ARGS_SRC) $(srcdir)/hash/args.h config.h
	@$(MKDIR_P) fuzz
	$(FUZZ_CC) $(FUZZ_CPPFLAGS) $(FUZZ_CFLAGS) -o $@ $(FUZZ_ARGS_SRC) $(FUZZ_LIBS)

fuzz/fuzz_depinfo: $(FUZZ_DEPINFO_SRC) $(srcdir)/hash/depinfo.h config.h
	@$(MKDIR_P) fuzz
	$(FUZZ_CC) $(FUZZ_CPPFLAGS) $(FUZZ_CFLAGS) -o $@ $(FUZZ_DEPINFO_SRC) $(FUZZ_LIBS)

fuzz/fuzz_job: $(FUZZ_JOB_SRC) $(srcdir)/hash/job.h $(srcdir)/hash/args.h \
		$(srcdir)/hash/digest.h config.h
	@$(MKDIR_P) fuzz
	$(FUZZ_CC) $(FUZZ_CPPFLAGS) $(FUZZ_CFLAGS) -o $@ $(FUZZ_JOB_SRC) $(FUZZ_LIBS)

fuzz/fuzz_manifest: $(FUZZ_MANIFEST_SRC) $(srcdir)/fs/manifest.h $(srcdir)/hash/digest.h config.h
	@$(MKDIR_P) fuzz
	$(FUZZ_CC) $(FUZZ_CPPFLAGS) $(FUZZ_CFLAGS) -o $@ $(FUZZ_MANIFEST_SRC) $(FUZZ_LIBS)

fuzz/fuzz_etag: $(FUZZ_ETAG_SRC) $(srcdir)/daemon/etag.h config.h
	@$(MKDIR_P) fuzz
	$(FUZZ_CC) $(FUZZ_CPPFLAGS) $(FUZZ_CFLAGS) -o $@ $(FUZZ_ETAG_SRC) $(FUZZ_LIBS)

fuzz/fuzz_toolchain: $(FUZZ_TOOLCHAIN_SRC) $(srcdir)/daemon/toolchain_unpack.h \
		$(srcdir)/hash/toolchain.h $(srcdir)/fs/tree.h config.h
	@$(MKDIR_P) fuzz
	$(FUZZ_CC) $(FUZZ_CPPFLAGS) $(ARCHIVE_CFLAGS) $(EVENT_CFLAGS) $(FUZZ_CFLAGS) -o $@ \
		$(FUZZ_TOOLCHAIN_SRC) $(ARCHIVE_LIBS) $(EVENT_LIBS) $(FUZZ_LIBS)

fuzz/fuzz_prekey_list: $(FUZZ_PREKEY_LIST_SRC) $(srcdir)/fs/prekey_list.h $(srcdir)/fs/manifest.h \
		$(srcdir)/hash/prekey.h $(srcdir)/hash/job.h config.h
	@$(MKDIR_P) fuzz
	$(FUZZ_CC) $(FUZZ_CPPFLAGS) $(FUZZ_CFLAGS) -o $@ $(FUZZ_PREKEY_LIST_SRC) $(FUZZ_LIBS)

fuzz: fuzz/fuzz_args fuzz/fuzz_depinfo fuzz/fuzz_job fuzz/fuzz_manifest fuzz/fuzz_etag \
	fuzz/fuzz_toolchain fuzz/fuzz_prekey_list

# One target after the other (the machines are small); every target runs even when an earlier
# one failed, and the rule fails at the end if any did. The summary is libFuzzer's own: the
# last coverage line and the final execution count.
fuzz-run: fuzz
	@failed=; for t in $(FUZZ_TARGETS); do \
	  rm -rf fuzz/work/$$t && $(MKDIR_P) fuzz/work/$$t fuzz/artifacts || exit 1; \
	  cp $(srcdir)/fuzz/corpus/$$t/* fuzz/work/$$t/ || exit 1; \
	  echo "fuzz-run: $$t for $(FUZZ_SECONDS) s"; \
	  if ./fuzz/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) -timeout=10 -print_final_stats=1 \
	      -dict=$(srcdir)/fuzz/$$t.dict -artifact_prefix=fuzz/artifacts/$$t- $(FUZZ_FLAGS) \
	      fuzz/work/$$t > fuzz/work/$$t.log 2>&1; then \
	    grep -E '^#[0-9]+' fuzz/work/$$t.log | tail -n 1; \
	    grep -E '^stat::(number_of_executed_units|peak_rss_mb)' fuzz/work/$$t.log; \
	    echo "fuzz-run: $$t: no crash"; \
	  else \
	    tail -n 40 fuzz/work/$$t.log; \
	    echo "fuzz-run: $$t: FAILED (log fuzz/work/$$t.log, input in fuzz/artifacts/)"; \
	    failed="$$failed $$t"; \
	  fi; \
	done; \
	if test -n "$$failed"; then echo "fuzz-run: failed:$$failed"; exit 1; fi

clean-fuzz:
	rm -rf fuzz/work fuzz/artifacts
	rm -f fuzz/fuzz_args fuzz/fuzz_depinfo fuzz/fuzz_job fuzz/fuzz_manifest fuzz/fuzz_etag \
		fuzz/fuzz_toolchain fuzz/fuzz_prekey_list

.PHONY: fuzz fuzz-run clean-fuzz

EXTRA_DIST += fuzz/fuzz_args.c fuzz/fuzz_depinfo.c fuzz/fuzz_job.c fuzz/fuzz_manifest.c \
	fuzz/fuzz_etag.c fuzz/fuzz_toolchain.c fuzz/args.dict fuzz/depinfo.dict fuzz/job.dict \
	fuzz/manifest.dict fuzz/etag.dict fuzz/toolchain.dict fuzz/corpus fuzz/fuzz_prekey_list.c \
	fuzz/prekey_list.dict
