/* cachepot fsck: verify a store (see fs/fsck.c). */
#ifndef CACHEPOT_FS_FSCK_H
#define CACHEPOT_FS_FSCK_H

/* Entry point of `cachepot fsck [STORE]`: ARGV[0] is "fsck". Returns the process exit status
 * (0 clean, 1 damage found, 2 usage or I/O error). */
int fsck_command(int argc, char **argv);

#endif
