/* sandbox-run: run one command through sandbox_run, for shell tests, benchmarks and by hand.
 *
 *   sandbox-run [-t TOOLCHAIN] [-i INPUT_DIR] [-o OUTPUT_HOST_DIR [-O OUTPUT_DEST]]
 *               [-b HOST:DEST]... [-C CWD] [-e NAME=VALUE]... [-T TIMEOUT_MS] [-m MEMORY_BYTES]
 *               [-p MAX_PROCESSES] [-c CAPTURE_BYTES] [-n REPEAT] [-B bwrap|docker|kvm]
 *               [-K KVM_DIR] [-G] -- ARGV...
 * (-K: the kvm backend's guest directory; -G: it may use TCG when there is no /dev/kvm)
 *
 * Writes the job's stdout and stderr to its own, then one summary line on stderr:
 *   sandbox-run: exited=1 status=0 signal=0 timed_out=0 memory_exceeded=0 pids_exceeded=0
 *                truncated=0 wall_us=... user_us=... sys_us=... max_rss_kb=...
 * and exits with 0 when the sandbox ran (whatever the job's status), 1 when it could not be set
 * up, 2 on bad usage. With -n, runs REPEAT times and prints only the last run's output.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/roots.h"
#include "sandbox/sandbox.h"

#define MAX_LIST 64

static void usage(void)
{
	fprintf(stderr, "usage: sandbox-run [-t TOOLCHAIN] [-i INPUT] [-o OUTDIR [-O DEST]] "
			"[-b HOST:DEST]... [-C CWD] [-e N=V]... [-T MS] [-m BYTES] [-p N] "
			"[-c BYTES] [-n REPEAT] [-B bwrap|docker|kvm] [-K KVM_DIR] [-G] -- ARGV...\n");
	exit(2);
}

static uint64_t number(const char *s)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s || *end)
		usage();
	return v;
}

int main(int argc, char **argv)
{
	struct sandbox_spec spec;
	struct sandbox_bind binds[MAX_LIST];
	char *envp[MAX_LIST + 1];
	struct sandbox_result r;
	size_t n_env = 0;
	unsigned long repeat = 1;
	int opt, rc = 0;

	memset(&spec, 0, sizeof(spec));
	spec.toolchain_dir = "tests/sandbox/toolchain";
	spec.binds = binds;
	while ((opt = getopt(argc, argv, "t:i:o:O:b:C:e:T:m:p:c:n:B:K:G")) != -1) {
		switch (opt) {
		case 't': spec.toolchain_dir = optarg; break;
		case 'i': spec.input_dir = optarg; break;
		case 'o': spec.output_host_dir = optarg; break;
		case 'O': spec.output_dest = optarg; break;
		case 'b': {
			char *colon = strchr(optarg, ':');
			if (!colon || spec.n_binds >= MAX_LIST)
				usage();
			*colon = '\0';
			binds[spec.n_binds].host = optarg;
			binds[spec.n_binds++].dest = colon + 1;
			break;
		}
		case 'C': spec.cwd = optarg; break;
		case 'e':
			if (n_env >= MAX_LIST)
				usage();
			envp[n_env++] = optarg;
			break;
		case 'T': spec.limits.timeout_ms = (unsigned)number(optarg); break;
		case 'm': spec.limits.memory_bytes = number(optarg); break;
		case 'p': spec.limits.max_processes = (unsigned)number(optarg); break;
		case 'c': spec.limits.capture_bytes = (size_t)number(optarg); break;
		case 'n': repeat = (unsigned long)number(optarg); break;
		case 'K': spec.kvm_dir = optarg; break;
		case 'G': spec.kvm_allow_tcg = 1; break;
		case 'B':
			if (sandbox_backend_parse(optarg, &spec.backend) < 0)
				usage();
			break;
		default: usage();
		}
	}
	if (optind >= argc || repeat == 0)
		usage();
	if (spec.output_host_dir && !spec.output_dest)
		spec.output_dest = ROOT_OUT;
	envp[n_env] = NULL;
	spec.envp = envp;
	spec.argv = argv + optind;

	for (unsigned long i = 0; i < repeat; i++) {
		if (i > 0)
			sandbox_result_release(&r);
		rc = sandbox_run(&spec, &r);
		if (rc < 0)
			break;
		if (spec.output_host_dir)
			(void)sandbox_output_release(spec.output_host_dir);
	}
	if (rc < 0) {
		fprintf(stderr, "sandbox-run: %s\n%s", strerror(-rc), r.err ? r.err : "");
		sandbox_result_release(&r);
		return 1;
	}
	fwrite(r.out, 1, r.out_len, stdout);
	fflush(stdout);
	fwrite(r.err, 1, r.err_len, stderr);
	fprintf(stderr,
		"sandbox-run: exited=%d status=%d signal=%d timed_out=%d memory_exceeded=%d "
		"pids_exceeded=%d truncated=%d wall_us=%" PRIu64 " user_us=%" PRIu64
		" sys_us=%" PRIu64 " max_rss_kb=%" PRIu64 "\n",
		r.exited, r.exit_status, r.term_signal, r.timed_out, r.memory_exceeded,
		r.pids_exceeded, r.output_truncated, r.wall_us, r.user_us, r.sys_us, r.max_rss_kb);
	sandbox_result_release(&r);
	return 0;
}
