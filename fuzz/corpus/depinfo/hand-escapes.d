out/lib\ x.rmeta: a$$b.rs c\\d.rs e\#f.rs

a$$b.rs:
# checksum:sha256=00ff file_len:3 a.rs
# env-dep:NAME=v\\\n
# env-dep:EMPTY=
