/*
 * mock-cluster: a real Kafka-protocol test broker built on librdkafka's
 * built-in mock cluster (librdkafka >= 2.0, rdkafka_mock.h).
 *
 * Usage: mock-cluster <brokerCount> [topic:partitions ...]
 *
 * Prints exactly one line "BOOTSTRAP <host:port,...>" on stdout once the
 * cluster is listening, then reads line commands from stdin and answers each
 * with one line "OK" or "ERR <text>":
 *
 *   down <brokerId|-1>                 rd_kafka_mock_broker_set_down
 *   up <brokerId|-1>                   rd_kafka_mock_broker_set_up
 *   topic <name> <partitions>          rd_kafka_mock_topic_create
 *   errors <apiKey> <count> <errcode>  rd_kafka_mock_push_request_errors_array
 *   clearerrors <apiKey>               rd_kafka_mock_clear_request_errors
 *   rtt <brokerId|-1> <ms>             rd_kafka_mock_broker_set_rtt
 *   quit                               destroy the cluster, exit 0
 *
 * EOF on stdin (the parent died or closed the pipe), SIGTERM, SIGINT and
 * SIGHUP also destroy the cluster and exit 0, so a dead parent never leaves
 * an orphan broker behind.
 *
 * Build: gcc -O2 -o mock-cluster mock-cluster.c -lrdkafka
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

/*
 * The mock cluster reports controller_id 0 in Metadata, a broker that does
 * not exist (ids are 1..N); kafkajs' idempotent producer then fails with
 * "Broker 0 not found" when it looks up the controller. The struct is opaque,
 * but in librdkafka 2.x it starts with these fields (rdkafka_mock_int.h):
 *
 *   struct rd_kafka_mock_cluster_s { char id[32]; rd_kafka_t *rk;
 *                                    int32_t controller_id; ... };
 */
struct mock_cluster_prefix {
        char id[32];
        rd_kafka_t *rk;
        int32_t controller_id;
};

#define MAX_LINE 1024

static rd_kafka_t *rk;
static rd_kafka_mock_cluster_t *mcluster;
static int broker_cnt;

static void shutdown_and_exit(int code) {
        if (mcluster)
                rd_kafka_mock_cluster_destroy(mcluster);
        mcluster = NULL;
        if (rk)
                rd_kafka_destroy(rk);
        rk = NULL;
        exit(code);
}

/* Write one reply line; if the parent is gone, shut down. */
static void reply(const char *fmt, ...) {
        va_list ap;
        int r;
        va_start(ap, fmt);
        r = vfprintf(stdout, fmt, ap);
        va_end(ap);
        if (r < 0 || fputc('\n', stdout) == EOF || fflush(stdout) != 0)
                shutdown_and_exit(0);
}

static int parse_int(const char *s, long min, long max, long *out) {
        char *end;
        long v;
        if (!s || !*s)
                return -1;
        errno = 0;
        v     = strtol(s, &end, 10);
        if (errno || *end || v < min || v > max)
                return -1;
        *out = v;
        return 0;
}

static int replication_factor(void) {
        return broker_cnt < 3 ? (broker_cnt < 1 ? 1 : broker_cnt) : 3;
}

static rd_kafka_resp_err_t create_topic(const char *name, int partitions) {
        return rd_kafka_mock_topic_create(mcluster, name, partitions,
                                          replication_factor());
}

static int valid_broker(long id) {
        return id == -1 || (id >= 1 && id <= broker_cnt);
}

static void handle_command(char *line) {
        char *save = NULL;
        char *cmd  = strtok_r(line, " \t\r\n", &save);
        char *a1, *a2, *a3;
        long v1, v2, v3;
        rd_kafka_resp_err_t err;

        if (!cmd) {
                reply("ERR empty command");
                return;
        }
        a1 = strtok_r(NULL, " \t\r\n", &save);
        a2 = a1 ? strtok_r(NULL, " \t\r\n", &save) : NULL;
        a3 = a2 ? strtok_r(NULL, " \t\r\n", &save) : NULL;

        if (!strcmp(cmd, "quit")) {
                reply("OK");
                shutdown_and_exit(0);

        } else if (!strcmp(cmd, "down") || !strcmp(cmd, "up")) {
                if (parse_int(a1, -1, INT32_MAX, &v1) || !valid_broker(v1)) {
                        reply("ERR usage: %s <brokerId 1..%d | -1>", cmd,
                              broker_cnt);
                        return;
                }
                err = !strcmp(cmd, "down")
                          ? rd_kafka_mock_broker_set_down(mcluster, (int32_t)v1)
                          : rd_kafka_mock_broker_set_up(mcluster, (int32_t)v1);
                if (err)
                        reply("ERR %s", rd_kafka_err2str(err));
                else
                        reply("OK");

        } else if (!strcmp(cmd, "topic")) {
                if (!a1 || parse_int(a2, 1, 100000, &v2)) {
                        reply("ERR usage: topic <name> <partitions>");
                        return;
                }
                err = create_topic(a1, (int)v2);
                if (err)
                        reply("ERR %s", rd_kafka_err2str(err));
                else
                        reply("OK");

        } else if (!strcmp(cmd, "errors")) {
                rd_kafka_resp_err_t *errs;
                long i;
                if (parse_int(a1, 0, INT16_MAX, &v1) ||
                    parse_int(a2, 1, 100000, &v2) ||
                    parse_int(a3, -1000, 1000, &v3)) {
                        reply("ERR usage: errors <apiKey> <count> <errcode>");
                        return;
                }
                errs = calloc((size_t)v2, sizeof(*errs));
                if (!errs) {
                        reply("ERR out of memory");
                        return;
                }
                for (i = 0; i < v2; i++)
                        errs[i] = (rd_kafka_resp_err_t)v3;
                rd_kafka_mock_push_request_errors_array(mcluster, (int16_t)v1,
                                                        (size_t)v2, errs);
                free(errs);
                reply("OK");

        } else if (!strcmp(cmd, "clearerrors")) {
                if (parse_int(a1, 0, INT16_MAX, &v1)) {
                        reply("ERR usage: clearerrors <apiKey>");
                        return;
                }
                rd_kafka_mock_clear_request_errors(mcluster, (int16_t)v1);
                reply("OK");

        } else if (!strcmp(cmd, "rtt")) {
                if (parse_int(a1, -1, INT32_MAX, &v1) || !valid_broker(v1) ||
                    parse_int(a2, 0, 3600000, &v2)) {
                        reply("ERR usage: rtt <brokerId 1..%d | -1> <ms>",
                              broker_cnt);
                        return;
                }
                err = rd_kafka_mock_broker_set_rtt(mcluster, (int32_t)v1,
                                                   (int)v2);
                if (err)
                        reply("ERR %s", rd_kafka_err2str(err));
                else
                        reply("OK");

        } else {
                reply("ERR unknown command '%s'", cmd);
        }
}

int main(int argc, char **argv) {
        char errstr[512];
        rd_kafka_conf_t *conf;
        sigset_t sigs;
        int sfd;
        long n;
        int i;
        char buf[MAX_LINE];
        size_t len = 0;
        int overflow = 0;

        if (argc < 2 || parse_int(argv[1], 1, 64, &n)) {
                fprintf(stderr,
                        "usage: %s <brokerCount 1..64> [topic:partitions ...]\n",
                        argv[0]);
                return 2;
        }
        broker_cnt = (int)n;

        /* Block the termination signals before librdkafka starts any thread
         * (threads inherit the mask) and receive them via a signalfd in the
         * main loop instead. Ignore SIGPIPE: a dead parent is handled via
         * failed writes / EOF. */
        sigemptyset(&sigs);
        sigaddset(&sigs, SIGTERM);
        sigaddset(&sigs, SIGINT);
        sigaddset(&sigs, SIGHUP);
        if (pthread_sigmask(SIG_BLOCK, &sigs, NULL) != 0) {
                perror("pthread_sigmask");
                return 1;
        }
        sfd = signalfd(-1, &sigs, SFD_CLOEXEC);
        if (sfd == -1) {
                perror("signalfd");
                return 1;
        }
        signal(SIGPIPE, SIG_IGN);

        conf = rd_kafka_conf_new();
        /* The handle only does book keeping for the mock cluster: keep it
         * quiet and make sure it never tries to reach a real cluster. */
        if (rd_kafka_conf_set(conf, "log_level", "3", errstr,
                              sizeof(errstr)) != RD_KAFKA_CONF_OK ||
            rd_kafka_conf_set(conf, "client.id", "chatbridge-mock-cluster",
                              errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK) {
                fprintf(stderr, "conf: %s\n", errstr);
                return 1;
        }
        rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
        if (!rk) {
                fprintf(stderr, "rd_kafka_new: %s\n", errstr);
                return 1;
        }

        mcluster = rd_kafka_mock_cluster_new(rk, broker_cnt);
        if (!mcluster) {
                fprintf(stderr, "rd_kafka_mock_cluster_new failed\n");
                rd_kafka_destroy(rk);
                return 1;
        }

        /* Point Metadata's controller id at an existing broker (see above).
         * Sanity check the layout first: the prefix's rk must be ours. */
        {
                struct mock_cluster_prefix *p =
                    (struct mock_cluster_prefix *)mcluster;
                if (p->rk != rk || rd_kafka_mock_cluster_handle(mcluster) != rk) {
                        fprintf(stderr,
                                "unexpected rd_kafka_mock_cluster_s layout "
                                "(librdkafka %s); cannot set controller id\n",
                                rd_kafka_version_str());
                        shutdown_and_exit(1);
                }
                __atomic_store_n(&p->controller_id, 1, __ATOMIC_SEQ_CST);
        }

        for (i = 2; i < argc; i++) {
                char *spec  = strdup(argv[i]);
                char *colon = spec ? strrchr(spec, ':') : NULL;
                long parts;
                rd_kafka_resp_err_t err;
                if (!colon || colon == spec ||
                    parse_int(colon + 1, 1, 100000, &parts)) {
                        fprintf(stderr, "bad topic spec '%s' "
                                        "(want name:partitions)\n",
                                argv[i]);
                        free(spec);
                        shutdown_and_exit(2);
                }
                *colon = '\0';
                err    = create_topic(spec, (int)parts);
                if (err) {
                        fprintf(stderr, "create topic %s: %s\n", spec,
                                rd_kafka_err2str(err));
                        free(spec);
                        shutdown_and_exit(1);
                }
                free(spec);
        }

        reply("BOOTSTRAP %s", rd_kafka_mock_cluster_bootstraps(mcluster));

        for (;;) {
                struct pollfd fds[2] = {{.fd = STDIN_FILENO, .events = POLLIN},
                                        {.fd = sfd, .events = POLLIN}};
                ssize_t r;

                if (poll(fds, 2, -1) == -1) {
                        if (errno == EINTR)
                                continue;
                        perror("poll");
                        shutdown_and_exit(1);
                }
                if (fds[1].revents & POLLIN)
                        shutdown_and_exit(0); /* SIGTERM / SIGINT / SIGHUP */
                if (!(fds[0].revents & (POLLIN | POLLHUP | POLLERR)))
                        continue;

                r = read(STDIN_FILENO, buf + len, sizeof(buf) - len);
                if (r == -1 && (errno == EINTR || errno == EAGAIN))
                        continue;
                if (r <= 0)
                        shutdown_and_exit(0); /* EOF: the parent is gone */
                len += (size_t)r;

                /* Handle every complete line in the buffer. */
                for (;;) {
                        char *nl = memchr(buf, '\n', len);
                        size_t used;
                        if (!nl) {
                                if (len == sizeof(buf)) {
                                        /* Line too long: drop it. */
                                        overflow = 1;
                                        len      = 0;
                                }
                                break;
                        }
                        *nl  = '\0';
                        used = (size_t)(nl - buf) + 1;
                        if (overflow) {
                                overflow = 0;
                                reply("ERR line too long");
                        } else {
                                handle_command(buf);
                        }
                        memmove(buf, buf + used, len - used);
                        len -= used;
                }
        }
}
