/* cachepotd's settings; see settings.h for the config file format. */
#include "config.h"

#include "daemon/settings.h"

#include "base/error.h"
#include "daemon/listen.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int daemon_config_init(struct daemon_config *cfg)
{
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);

	memset(cfg, 0, sizeof(*cfg));
	cfg->store_dir = strdup(DAEMON_DEFAULT_STORE);
	cfg->socket_path = strdup(DAEMON_DEFAULT_SOCKET);
	if (!cfg->store_dir || !cfg->socket_path) {
		daemon_config_release(cfg);
		return -ENOMEM;
	}
	cfg->jobs = cpus > 0 ? (unsigned)cpus : 1;
	cfg->queue_max = 256;
	cfg->max_upload_bytes = 4ull << 30;   /* a toolchain archive is ~600 MiB uncompressed */
	cfg->max_blob_bytes = 1ull << 30;
	cfg->max_input_bytes = 8ull << 30;
	cfg->max_output_bytes = 1ull << 30;
	cfg->max_connections_per_peer = DAEMON_DEFAULT_MAX_CONNECTIONS_PER_PEER;
	cfg->unused_toolchain_seconds = DAEMON_DEFAULT_UNUSED_TOOLCHAIN_SECONDS;
	cfg->upload_idle_seconds = DAEMON_DEFAULT_UPLOAD_IDLE_SECONDS;
	cfg->gc_interval_seconds = DAEMON_DEFAULT_GC_INTERVAL_SECONDS;
	return 0;
}

void daemon_config_release(struct daemon_config *cfg)
{
	free(cfg->store_dir);
	free(cfg->socket_path);
	free(cfg->listen);
	free(cfg->listen_tls);
	free(cfg->tls_cert);
	free(cfg->tls_key);
	free(cfg->client_ca);
	free(cfg->docker_socket);
	cfg->docker_socket = NULL;
	free(cfg->kvm_dir);
	cfg->kvm_dir = NULL;
	cfg->store_dir = cfg->socket_path = NULL;
	cfg->listen = cfg->listen_tls = cfg->tls_cert = cfg->tls_key = cfg->client_ca = NULL;
}

int daemon_parse_size(const char *s, uint64_t *out)
{
	uint64_t v = 0, mul = 1;
	const char *p = s;

	if (!isdigit((unsigned char)*p))
		return -EINVAL;
	for (; isdigit((unsigned char)*p); p++) {
		if (__builtin_mul_overflow(v, 10, &v) || __builtin_add_overflow(v, (uint64_t)(*p - '0'), &v))
			return -EINVAL;
	}
	switch (*p) {
	case 'K': case 'k': mul = 1ull << 10; p++; break;
	case 'M': case 'm': mul = 1ull << 20; p++; break;
	case 'G': case 'g': mul = 1ull << 30; p++; break;
	case 'T': case 't': mul = 1ull << 40; p++; break;
	default: break;
	}
	if (*p != '\0' || __builtin_mul_overflow(v, mul, &v))
		return -EINVAL;
	*out = v;
	return 0;
}

/* Parse "N[,N...]" into LIST (appending), each at most MAX_ID. */
static int parse_ids(const char *s, unsigned *list, size_t *n, char *err, size_t errlen,
		     const char *what)
{
	const char *p = s;

	while (*p) {
		uint64_t v = 0;
		const char *start = p;
		for (; isdigit((unsigned char)*p); p++) {
			if (__builtin_mul_overflow(v, 10, &v)
			    || __builtin_add_overflow(v, (uint64_t)(*p - '0'), &v) || v > 0xfffffffeu)
				return error_format(err, errlen, -EINVAL,
						    "%s: id out of range in '%s'", what, s);
		}
		if (p == start || (*p != ',' && *p != '\0'))
			return error_format(err, errlen, -EINVAL,
					    "%s: a comma-separated list of numeric ids expected, not '%s'",
					    what, s);
		if (*n >= DAEMON_IDS_MAX)
			return error_format(err, errlen, -EINVAL, "%s: more than %d ids", what,
					    DAEMON_IDS_MAX);
		list[(*n)++] = (unsigned)v;
		if (*p == ',')
			p++;
	}
	return 0;
}

static int name_is(const char *name, const char *want)
{
	for (; *name && *want; name++, want++) {
		char a = *name == '_' ? '-' : *name;
		if (a != *want)
			return 0;
	}
	return *name == '\0' && *want == '\0';
}

int daemon_config_set(struct daemon_config *cfg, const char *name, const char *value,
		      char *err, size_t errlen)
{
	uint64_t v;
	char **str = NULL;

	if (name_is(name, "listen") || name_is(name, "listen-tls")) {
		struct sockaddr_storage addr;
		socklen_t len;
		char msg[200], *copy;
		str = name_is(name, "listen") ? &cfg->listen : &cfg->listen_tls;
		if (listen_address_parse(value, &addr, &len, msg, sizeof(msg)) < 0)
			return error_format(err, errlen, -EINVAL, "%s: %s", name, msg);
		copy = strdup(value);
		if (!copy)
			return -ENOMEM;
		free(*str);
		*str = copy;
		return 0;
	}
	if (name_is(name, "store"))
		str = &cfg->store_dir;
	else if (name_is(name, "socket"))
		str = &cfg->socket_path;
	else if (name_is(name, "tls-cert"))
		str = &cfg->tls_cert;
	else if (name_is(name, "tls-key"))
		str = &cfg->tls_key;
	else if (name_is(name, "client-ca"))
		str = &cfg->client_ca;
	else if (name_is(name, "docker-socket"))
		str = &cfg->docker_socket;
	else if (name_is(name, "kvm-dir"))
		str = &cfg->kvm_dir;
	if (str) {
		char *copy;
		if (value[0] != '/')
			return error_format(err, errlen, -EINVAL, "%s: an absolute path expected",
					    name);
		copy = strdup(value);
		if (!copy)
			return -ENOMEM;
		free(*str);
		*str = copy;
		return 0;
	}
	if (name_is(name, "sandbox")) {
		if (sandbox_backend_parse(value, &cfg->sandbox) == 0)
			return 0;
		return error_format(err, errlen, -EINVAL,
				    "%s: bwrap, docker or kvm expected, not '%s'", name, value);
	}
	if (name_is(name, "allow-no-cgroup-limits") || name_is(name, "kvm-allow-tcg")) {
		if (strcmp(value, "yes") == 0 || strcmp(value, "no") == 0) {
			*(name_is(name, "kvm-allow-tcg") ? &cfg->kvm_allow_tcg
							 : &cfg->allow_no_cgroup_limits) = value[0] == 'y';
			return 0;
		}
		return error_format(err, errlen, -EINVAL, "%s: yes or no expected, not '%s'", name,
				    value);
	}
	if (name_is(name, "verify-sample")) {
		char *end = NULL;
		double p;
		errno = 0;
		p = strtod(value, &end);
		/* Plain decimal only: strtod also takes "nan", "inf" and hex floats. */
		if (errno != 0 || end == value || *end != '\0' || !(p >= 0.0 && p <= 1.0)
		    || strspn(value, "0123456789.") != strlen(value))
			return error_format(err, errlen, -EINVAL, "%s: a fraction from 0 to 1 expected "
					    "(0.01 rebuilds one hit in a hundred), not '%s'", name, value);
		cfg->verify_sample = p;
		return 0;
	}
	if (name_is(name, "allow-uid"))
		return parse_ids(value, (unsigned *)cfg->allow_uids, &cfg->n_allow_uids, err, errlen, name);
	if (name_is(name, "allow-gid"))
		return parse_ids(value, (unsigned *)cfg->allow_gids, &cfg->n_allow_gids, err, errlen, name);

	if (name_is(name, "max-size")) {
		if (daemon_parse_size(value, &v) < 0)
			return error_format(err, errlen, -EINVAL,
					    "%s: a size expected (digits and an optional K, M, G or T), "
					    "not '%s'", name, value);
		cfg->max_size = v;
		return 0;
	}
	if (daemon_parse_size(value, &v) < 0)
		return error_format(err, errlen, -EINVAL, "%s: a number expected, not '%s'", name,
				    value);
	if (name_is(name, "gc-interval-seconds")) {
		if (v == 0 || v > DAEMON_GC_INTERVAL_SECONDS_MAX)
			return error_format(err, errlen, -EINVAL, "%s: 1 to %u", name,
					    DAEMON_GC_INTERVAL_SECONDS_MAX);
		cfg->gc_interval_seconds = (unsigned)v;
		return 0;
	}
	if (name_is(name, "jobs") || name_is(name, "queue") || name_is(name, "timeout-ms")
	    || name_is(name, "max-connections-per-peer")) {
		if (v > 1000000 || (v == 0 && !name_is(name, "timeout-ms")))
			return error_format(err, errlen, -EINVAL, "%s: out of range", name);
		if (name_is(name, "jobs"))
			cfg->jobs = (unsigned)v;
		else if (name_is(name, "queue"))
			cfg->queue_max = (unsigned)v;
		else if (name_is(name, "max-connections-per-peer"))
			cfg->max_connections_per_peer = (unsigned)v;
		else
			cfg->timeout_ms = (unsigned)v;
		return 0;
	}
	if (name_is(name, "unused-toolchain-seconds")) {
		if (v > DAEMON_UNUSED_TOOLCHAIN_SECONDS_MAX)
			return error_format(err, errlen, -EINVAL, "%s: at most %u (a year)", name,
					    DAEMON_UNUSED_TOOLCHAIN_SECONDS_MAX);
		cfg->unused_toolchain_seconds = (unsigned)v;
		return 0;
	}
	if (name_is(name, "upload-idle-seconds")) {
		if (v == 0 || v > DAEMON_UPLOAD_IDLE_SECONDS_MAX)
			return error_format(err, errlen, -EINVAL, "%s: 1 to %u", name,
					    DAEMON_UPLOAD_IDLE_SECONDS_MAX);
		cfg->upload_idle_seconds = (unsigned)v;
		return 0;
	}
	if (name_is(name, "max-upload-bytes"))
		cfg->max_upload_bytes = v;
	else if (name_is(name, "max-blob-bytes"))
		cfg->max_blob_bytes = v;
	else if (name_is(name, "max-input-bytes"))
		cfg->max_input_bytes = v;
	else if (name_is(name, "max-output-bytes"))
		cfg->max_output_bytes = v;
	else if (name_is(name, "memory-bytes"))
		cfg->memory_bytes = v;
	else
		return error_format(err, errlen, -EINVAL, "unknown setting '%s'", name);
	return 0;
}

int daemon_config_check(const struct daemon_config *cfg, char *err, size_t errlen)
{
	if (cfg->listen_tls && (!cfg->tls_cert || !cfg->tls_key || !cfg->client_ca))
		return error_format(err, errlen, -EINVAL,
				    "--listen-tls needs --tls-cert FILE, --tls-key FILE and "
				    "--client-ca FILE");
	if (!cfg->listen_tls && (cfg->tls_cert || cfg->tls_key || cfg->client_ca))
		return error_format(err, errlen, -EINVAL, "--%s is set without --listen-tls",
				    cfg->tls_cert ? "tls-cert" : cfg->tls_key ? "tls-key" : "client-ca");
	if (cfg->listen && cfg->listen_tls && strcmp(cfg->listen, cfg->listen_tls) == 0)
		return error_format(err, errlen, -EINVAL, "--listen and --listen-tls are both %s",
				    cfg->listen);
	return 0;
}

static char *trim(char *s)
{
	char *end;
	while (isspace((unsigned char)*s))
		s++;
	end = s + strlen(s);
	while (end > s && isspace((unsigned char)end[-1]))
		*--end = '\0';
	return s;
}

int daemon_config_load(struct daemon_config *cfg, const char *path, char *err, size_t errlen)
{
	char line[DAEMON_CONFIG_LINE_MAX + 2];
	char msg[256];
	unsigned lineno = 0;
	size_t total = 0;
	int fd, ret = 0;
	FILE *f;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		ret = -errno;
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return ret;
	}
	f = fdopen(fd, "r");
	if (!f) {
		ret = -errno;
		close(fd);
		snprintf(err, errlen, "%s: %s", path, strerror(-ret));
		return ret;
	}
	while (fgets(line, sizeof(line), f)) {
		char *p, *eq, *name, *value;
		size_t len = strlen(line);

		lineno++;
		total += len;
		if (total > DAEMON_CONFIG_BYTES_MAX) {
			snprintf(err, errlen, "%s: larger than %u bytes", path, DAEMON_CONFIG_BYTES_MAX);
			ret = -EFBIG;
			break;
		}
		if (len > DAEMON_CONFIG_LINE_MAX) {
			snprintf(err, errlen, "%s:%u: line too long", path, lineno);
			ret = -EINVAL;
			break;
		}
		p = trim(line);
		if (*p == '\0' || *p == '#')
			continue;
		eq = strchr(p, '=');
		if (!eq) {
			snprintf(err, errlen, "%s:%u: 'name = value' expected", path, lineno);
			ret = -EINVAL;
			break;
		}
		*eq = '\0';
		name = trim(p);
		value = trim(eq + 1);
		ret = daemon_config_set(cfg, name, value, msg, sizeof(msg));
		if (ret < 0) {
			snprintf(err, errlen, "%s:%u: %s", path, lineno, msg);
			break;
		}
	}
	if (ret == 0 && ferror(f)) {
		ret = -EIO;
		snprintf(err, errlen, "%s: read error", path);
	}
	fclose(f);
	return ret;
}
