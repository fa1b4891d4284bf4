# bench/: benchmarks (make bench).
