seed.d: lib.rs src\ dir/a\ mod.rs data#1.txt

libseed.rmeta: lib.rs src\ dir/a\ mod.rs data#1.txt

lib.rs:
src\ dir/a\ mod.rs:
data#1.txt:

# env-dep:CARGO_PKG_NAME=seed pkg
# env-dep:FUZZ_SEED_UNSET
# env-dep:FUZZ_SEED_VAR=two\nlines\\and\rcr
