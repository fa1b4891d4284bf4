# fuzz/: libFuzzer targets (make fuzz; not part of make check).
