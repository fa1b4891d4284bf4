/* cachepot --explain (see explain.c). */
#ifndef CACHEPOT_CLIENT_EXPLAIN_H
#define CACHEPOT_CLIENT_EXPLAIN_H

/* Print the job of `ARGV[0] ARGV[1..]` (RUSTC and its arguments) as JSON on stdout: key,
 * cacheable, reason, toolchain, argv, env, cwd, inputs. With a leading "--dump", every hashed
 * field also goes to stderr. Toolchain ids are cached in CACHE_DIR. Returns the exit status. */
int explain_command(int argc, char **argv, const char *cache_dir);

#endif
