/* Baseline for the producer benchmark: the least a librdkafka program can do to send N messages
 * of the given size (same idempotent, batched settings as the Swift producer). */
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static long delivered, failed;
static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
    (void)rk; (void)opaque;
    if (m->err) failed++; else delivered++;
}

int main(int argc, char **argv) {
    if (argc != 5) { fprintf(stderr, "usage: c_producer BROKERS TOPIC COUNT SIZE\n"); return 2; }
    long count = atol(argv[3]);
    size_t size = (size_t)atol(argv[4]);
    char errstr[512], *payload = malloc(size), key[32];
    memset(payload, 'x', size);
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "bootstrap.servers", argv[1], errstr, sizeof errstr);
    rd_kafka_conf_set(conf, "enable.idempotence", "true", errstr, sizeof errstr);
    rd_kafka_conf_set(conf, "linger.ms", "5", errstr, sizeof errstr);
    rd_kafka_conf_set(conf, "batch.num.messages", "10000", errstr, sizeof errstr);
    rd_kafka_conf_set(conf, "queue.buffering.max.messages", "500000", errstr, sizeof errstr);
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
    if (!rk) { fprintf(stderr, "%s\n", errstr); return 1; }
    rd_kafka_topic_t *topic = rd_kafka_topic_new(rk, argv[2], NULL);
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (long i = 0; i < count; i++) {
        int n = snprintf(key, sizeof key, "GPU-%ld", i % 8);
        while (rd_kafka_produce(topic, RD_KAFKA_PARTITION_UA, RD_KAFKA_MSG_F_COPY, payload, size, key, (size_t)n, NULL) == -1)
            rd_kafka_poll(rk, 50);
        if (i % 1000 == 0) rd_kafka_poll(rk, 0);
    }
    rd_kafka_flush(rk, 30000);
    clock_gettime(CLOCK_MONOTONIC, &b);
    double seconds = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
    printf("{\"delivered\":%ld,\"failed\":%ld,\"seconds\":%.3f,\"rate\":%.0f}\n", delivered, failed, seconds, delivered / seconds);
    rd_kafka_topic_destroy(topic);
    rd_kafka_destroy(rk);
    return failed ? 1 : 0;
}
