/* Baseline for the processor benchmark: the naive design, one insert per message. A plain
 * librdkafka + libmongoc loop: poll a record, parse its JSON, add the processor's _id and Kafka
 * fields, insert it alone, commit its offset, next. No validation, no rollups, nothing overlapped.
 * COMMIT is "sync" (the record's offset is acknowledged by the broker before the next record, the
 * textbook at-least-once loop) or "async" (sent without waiting).
 * Runs SECONDS from its first insert; prints {"inserted":N,"seconds":S,"rate":R}. */
#include <librdkafka/rdkafka.h>
#include <mongoc/mongoc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void index_on(mongoc_client_t *client, const char *database, const char *json) {
    bson_error_t error;
    bson_t *command = bson_new_from_json((const uint8_t *)json, -1, &error);
    if (!command || !mongoc_client_command_simple(client, database, command, NULL, NULL, &error)) {
        fprintf(stderr, "c_naive_consumer: createIndexes: %s\n", error.message);
        exit(1);
    }
    bson_destroy(command);
}

int main(int argc, char **argv) {
    if (argc != 7) { fprintf(stderr, "usage: c_naive_consumer BROKERS GROUP URI DATABASE SECONDS sync|async\n"); return 2; }
    double seconds = atof(argv[5]);
    int async = strcmp(argv[6], "async") == 0;
    char errstr[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "bootstrap.servers", argv[1], errstr, sizeof errstr);
    rd_kafka_conf_set(conf, "group.id", argv[2], errstr, sizeof errstr);
    rd_kafka_conf_set(conf, "enable.auto.commit", "false", errstr, sizeof errstr);
    rd_kafka_conf_set(conf, "auto.offset.reset", "earliest", errstr, sizeof errstr);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof errstr);
    if (!rk) { fprintf(stderr, "c_naive_consumer: %s\n", errstr); return 1; }
    rd_kafka_poll_set_consumer(rk);
    rd_kafka_topic_partition_list_t *topics = rd_kafka_topic_partition_list_new(2);
    rd_kafka_topic_partition_list_add(topics, "gpu.metrics.v1", RD_KAFKA_PARTITION_UA);
    rd_kafka_topic_partition_list_add(topics, "token.usage.v1", RD_KAFKA_PARTITION_UA);
    rd_kafka_subscribe(rk, topics);
    rd_kafka_topic_partition_list_destroy(topics);

    mongoc_init();
    mongoc_client_t *client = mongoc_client_new(argv[3]);
    index_on(client, argv[4], "{\"createIndexes\":\"gpu_metrics\",\"indexes\":[{\"key\":{\"gpu_uuid\":1,\"timestamp\":1},\"name\":\"gpu_uuid_timestamp_idx\"}]}");
    index_on(client, argv[4], "{\"createIndexes\":\"token_usage\",\"indexes\":[{\"key\":{\"request_id\":1},\"name\":\"request_id_idx\"}]}");
    mongoc_collection_t *metrics = mongoc_client_get_collection(client, argv[4], "gpu_metrics");
    mongoc_collection_t *tokens = mongoc_client_get_collection(client, argv[4], "token_usage");

    long inserted = 0;
    double start = 0, end = 0;
    while (start == 0 || now() < end) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
        if (!m) continue;
        if (m->err) { rd_kafka_message_destroy(m); continue; }
        const char *topic = rd_kafka_topic_name(m->rkt);
        bson_error_t error;
        bson_t *doc = bson_new_from_json(m->payload, (ssize_t)m->len, &error);
        if (doc) {
            char id[256];
            snprintf(id, sizeof id, "%s/%d/%lld", topic, m->partition, (long long)m->offset);
            BSON_APPEND_UTF8(doc, "_id", id);
            BSON_APPEND_INT32(doc, "kafka_partition", m->partition);
            if (m->offset <= INT32_MAX) BSON_APPEND_INT32(doc, "kafka_offset", (int32_t)m->offset);  /* as the processor stores it */
            else BSON_APPEND_INT64(doc, "kafka_offset", m->offset);
            BSON_APPEND_DATE_TIME(doc, "received_at", (int64_t)time(NULL) * 1000);
            mongoc_collection_t *target = strcmp(topic, "gpu.metrics.v1") == 0 ? metrics : tokens;
            if (!mongoc_collection_insert_one(target, doc, NULL, NULL, &error) && error.code != 11000) {
                fprintf(stderr, "c_naive_consumer: insert: %s\n", error.message);
                return 1;
            }
            bson_destroy(doc);
            if (start == 0) { start = now(); end = start + seconds; }
            inserted++;
        }
        rd_kafka_commit_message(rk, m, async);
        rd_kafka_message_destroy(m);
    }
    double elapsed = now() - start;
    printf("{\"inserted\":%ld,\"seconds\":%.3f,\"rate\":%.0f}\n", inserted, elapsed, inserted / elapsed);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    mongoc_collection_destroy(metrics);
    mongoc_collection_destroy(tokens);
    mongoc_client_destroy(client);
    mongoc_cleanup();
    return 0;
}
