# bench/: benchmarks (make bench).
# `make bench` runs bench/run on ../shared/corpus/small from this build directory (build it
# without --enable-sanitizers for meaningful figures): plain cargo, sccache and cachepot side by
# side, then bench/sandbox-startup.sh and bench/fs-bench.sh. BENCH_ARGS adds options, e.g.
# make bench BENCH_ARGS='--reps 1 --no-fs-bench'; BENCH_CORPUS picks another workspace.
BENCH_CORPUS = $(abs_top_srcdir)/../shared/corpus/small
BENCH_ARGS =
EXTRA_DIST += bench/run bench/record-rustc bench/hit-repeat bench/README.md bench/gc-bench.sh \
	bench/listing-bench.sh bench/scale-bench.sh
.PHONY: bench
bench: cachepot cachepotd cachepot-fs
	$(top_srcdir)/bench/run '$(BENCH_CORPUS)' --build '$(abs_top_builddir)' --out bench.json $(BENCH_ARGS)

# bench/publish-bench.sh drives it: publish throughput of the store's durable path.
check_PROGRAMS += bench/publish-bench
bench_publish_bench_SOURCES = bench/publish-bench.c
bench_publish_bench_LDADD = libcachepot.a $(DEP_LIBS)
EXTRA_DIST += bench/publish-bench.sh
check_PROGRAMS += bench/read-bench
bench_read_bench_SOURCES = bench/read-bench.c
bench_read_bench_LDADD = libcachepot.a $(DEP_LIBS)
