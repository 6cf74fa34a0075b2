/*
 * kafka_mock.c - streambus-kafka-mock: librdkafka's mock cluster as a
 * process of its own, for the Kafka backend's tests and benchmarks.
 *
 *   streambus-kafka-mock [-n BROKERS] [-t TOPIC:PARTITIONS]... [-o FILE]
 *
 * Starts BROKERS (default 1) mock brokers on loopback inside this process,
 * creates the topics given, prints the bootstrap address (host:port,...) as
 * its first line on stdout (and writes it to FILE, renamed into place, if
 * -o is given, so that a script can wait for the file), then stays up until
 * SIGINT/SIGTERM or the command `quit`.
 *
 * Commands, one per line on stdin (each answered "ok ..." or "error ..."
 * on stdout); end of input leaves the cluster up:
 *   topic NAME PARTITIONS   create a topic
 *   down ID|all             take broker ID (1..BROKERS) or all of them down
 *   up ID|all               bring it back
 *   rtt ID|all MS           delay every reply of the broker by MS
 *   quit                    stop
 * Signals: SIGUSR1 takes all brokers down, SIGUSR2 brings them up.
 *
 * The mock of librdkafka 2.0.2 serves Produce, Fetch, ListOffsets (not by
 * time), Metadata, groups and transactions; it has no CreateTopics or
 * DeleteRecords, and keeps only the newest 5 MiB (or 100,000 message sets)
 * of each partition.
 */
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

typedef struct mock {
	rd_kafka_t *rk;
	rd_kafka_mock_cluster_t *mc;
	int brokers;
} mock;

static void usage(FILE *f)
{
	fputs("usage: streambus-kafka-mock [-n BROKERS] [-t TOPIC:PARTITIONS]... [-o FILE]\n"
	      "Runs librdkafka's mock Kafka cluster on loopback and prints its bootstrap\n"
	      "address. Commands on stdin: topic NAME N | down ID|all | up ID|all |\n"
	      "rtt ID|all MS | quit. SIGUSR1: all brokers down, SIGUSR2: all up.\n", f);
}

static int mock_start(mock *m, int brokers)
{
	char err[256];
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	/* a handle only to own the cluster: it talks to nobody */
	if (rd_kafka_conf_set(conf, "log_level", "3", err, sizeof err) != RD_KAFKA_CONF_OK) {
		fprintf(stderr, "streambus-kafka-mock: %s\n", err);
		rd_kafka_conf_destroy(conf);
		return -1;
	}
	m->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
	if (!m->rk) {
		fprintf(stderr, "streambus-kafka-mock: %s\n", err);
		rd_kafka_conf_destroy(conf);
		return -1;
	}
	m->mc = rd_kafka_mock_cluster_new(m->rk, brokers);
	if (!m->mc) {
		fprintf(stderr, "streambus-kafka-mock: cannot start the mock cluster\n");
		rd_kafka_destroy(m->rk);
		return -1;
	}
	m->brokers = brokers;
	return 0;
}

static void mock_stop(mock *m)
{
	rd_kafka_mock_cluster_destroy(m->mc);
	rd_kafka_destroy(m->rk);
}

static int topic_create(mock *m, const char *name, int parts)
{
	rd_kafka_resp_err_t e = rd_kafka_mock_topic_create(m->mc, name, parts, 1);
	if (e) {
		fprintf(stderr, "streambus-kafka-mock: topic %s: %s\n", name, rd_kafka_err2str(e));
		return -1;
	}
	return 0;
}

/* Apply fn to broker `which` ("all" or 1..brokers). */
static int each_broker(mock *m, const char *which, int what, int arg)
{
	int lo = 1, hi = m->brokers;
	if (strcmp(which, "all") != 0) {
		char *end;
		long id = strtol(which, &end, 10);
		if (*end || id < 1 || id > m->brokers)
			return -1;
		lo = hi = (int)id;
	}
	for (int id = lo; id <= hi; id++) {
		rd_kafka_resp_err_t e;
		if (what == 'd')
			e = rd_kafka_mock_broker_set_down(m->mc, id);
		else if (what == 'u')
			e = rd_kafka_mock_broker_set_up(m->mc, id);
		else
			e = rd_kafka_mock_broker_set_rtt(m->mc, id, arg);
		if (e)
			return -1;
	}
	return 0;
}

/* One command line; returns 1 on quit. */
static int command(mock *m, char *line)
{
	char *save = NULL;
	char *verb = strtok_r(line, " \t\r\n", &save);
	char *a1 = verb ? strtok_r(NULL, " \t\r\n", &save) : NULL;
	char *a2 = a1 ? strtok_r(NULL, " \t\r\n", &save) : NULL;
	int rc = -1;
	if (!verb)
		return 0;
	if (strcmp(verb, "quit") == 0)
		return 1;
	if (strcmp(verb, "topic") == 0 && a1 && a2 && atoi(a2) > 0)
		rc = topic_create(m, a1, atoi(a2));
	else if (strcmp(verb, "down") == 0 && a1)
		rc = each_broker(m, a1, 'd', 0);
	else if (strcmp(verb, "up") == 0 && a1)
		rc = each_broker(m, a1, 'u', 0);
	else if (strcmp(verb, "rtt") == 0 && a1 && a2)
		rc = each_broker(m, a1, 'r', atoi(a2));
	printf("%s %s%s%s%s%s\n", rc == 0 ? "ok" : "error", verb, a1 ? " " : "", a1 ? a1 : "",
	       a2 ? " " : "", a2 ? a2 : "");
	fflush(stdout);
	return 0;
}

/* Publish the bootstrap address in FILE: temp file, then rename. */
static int write_addr(const char *path, const char *addr)
{
	size_t n = strlen(path) + 8;
	char *tmp = malloc(n);
	if (!tmp)
		return -1;
	snprintf(tmp, n, "%s.tmp", path);
	FILE *f = fopen(tmp, "w");
	int rc = -1;
	if (f) {
		int ok = fprintf(f, "%s\n", addr) > 0;
		if (fclose(f) == 0 && ok && rename(tmp, path) == 0)
			rc = 0;
	}
	if (rc)
		fprintf(stderr, "streambus-kafka-mock: %s: %s\n", path, strerror(errno));
	free(tmp);
	return rc;
}

/* Wait for commands and signals until told to stop. */
static void serve(mock *m, int sfd)
{
	char buf[4096];
	size_t have = 0;
	int in_open = 1;
	for (;;) {
		struct pollfd p[2] = { { sfd, POLLIN, 0 }, { 0, POLLIN, 0 } };
		if (poll(p, in_open ? 2 : 1, -1) < 0) {
			if (errno == EINTR)
				continue;
			return;
		}
		if (p[0].revents & POLLIN) {
			struct signalfd_siginfo si;
			if (read(sfd, &si, sizeof si) != sizeof si)
				continue;
			if (si.ssi_signo == SIGUSR1)
				each_broker(m, "all", 'd', 0);
			else if (si.ssi_signo == SIGUSR2)
				each_broker(m, "all", 'u', 0);
			else
				return;
		}
		if (in_open && (p[1].revents & (POLLIN | POLLHUP | POLLERR))) {
			ssize_t n = read(0, buf + have, sizeof buf - 1 - have);
			if (n <= 0) {
				in_open = 0; /* stdin gone: keep serving until a signal */
				continue;
			}
			have += (size_t)n;
			char *nl;
			while ((nl = memchr(buf, '\n', have))) {
				*nl = 0;
				if (command(m, buf))
					return;
				have -= (size_t)(nl + 1 - buf);
				memmove(buf, nl + 1, have);
			}
			if (have == sizeof buf - 1)
				have = 0; /* a line too long: drop it */
		}
	}
}

int main(int argc, char **argv)
{
	int brokers = 1, opt;
	const char *out = NULL;
	char **topics = calloc((size_t)argc, sizeof *topics);
	size_t ntopics = 0;
	if (!topics)
		return 1;
	while ((opt = getopt(argc, argv, "n:t:o:h")) != -1) {
		switch (opt) {
		case 'n': brokers = atoi(optarg); break;
		case 't': topics[ntopics++] = optarg; break;
		case 'o': out = optarg; break;
		case 'h': usage(stdout); free(topics); return 0;
		default: usage(stderr); free(topics); return 2;
		}
	}
	if (optind != argc || brokers < 1 || brokers > 64) {
		usage(stderr);
		free(topics);
		return 2;
	}
	/* signals are read from a signalfd, so they must be blocked in every
	 * thread: block them before librdkafka starts its threads */
	sigset_t set;
	sigemptyset(&set);
	int sigs[] = { SIGINT, SIGTERM, SIGHUP, SIGUSR1, SIGUSR2 };
	for (size_t i = 0; i < sizeof sigs / sizeof *sigs; i++)
		sigaddset(&set, sigs[i]);
	sigprocmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	int sfd = signalfd(-1, &set, SFD_CLOEXEC);
	mock m;
	int rc = 1;
	if (sfd < 0 || mock_start(&m, brokers) != 0)
		goto out_free;
	for (size_t i = 0; i < ntopics; i++) {
		char *colon = strrchr(topics[i], ':');
		int parts = colon ? atoi(colon + 1) : 1;
		if (colon)
			*colon = 0;
		if (parts < 1 || topic_create(&m, topics[i], parts) != 0)
			goto out_stop;
	}
	const char *addr = rd_kafka_mock_cluster_bootstraps(m.mc);
	printf("%s\n", addr);
	fflush(stdout);
	if (out && write_addr(out, addr) != 0)
		goto out_stop;
	serve(&m, sfd);
	rc = 0;
out_stop:
	mock_stop(&m);
out_free:
	if (sfd >= 0)
		close(sfd);
	free(topics);
	return rc;
}
