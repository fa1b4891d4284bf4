#!/usr/bin/env python3
# RUSTC_WRAPPER that appends each rustc invocation cargo makes (cwd, argv, the environment
# rustc sees) as one JSON line to $CACHEPOT_RECORD, then runs rustc. Used by
# tests/data/record-invocations.sh to produce the parser test data.
import json, os, sys
rec = {"cwd": os.getcwd(), "argv": sys.argv[1:],
       "env": {k: v for k, v in os.environ.items()
               if k.startswith("CARGO") or k in ("OUT_DIR", "RUSTC_BOOTSTRAP", "TARGET", "HOST")}}
with open(os.environ["CACHEPOT_RECORD"], "a") as f:
    f.write(json.dumps(rec, sort_keys=True) + "\n")
os.execv(sys.argv[1], sys.argv[1:])
