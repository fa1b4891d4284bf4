/* Placeholder until the store lands (issue 3). */
#include "config.h"
#include <stdio.h>
#include "fs/fsck.h"

int fsck_command(int argc, char **argv)
{
	(void)argc; (void)argv;
	fprintf(stderr, "cachepot fsck: the store is not built yet\n");
	return 2;
}
