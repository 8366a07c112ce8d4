#define _GNU_SOURCE
#include "CKafkaAdmin.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <librdkafka/rdkafka.h>

/* What the 2.0.2 headers do not declare, as opaque pointers. */
typedef void *(*of_topic_names_fn)(const char **names, size_t count);
typedef void (*collection_destroy_fn)(void *collection);
typedef void (*describe_topics_fn)(rd_kafka_t *rk, const void *collection,
                                   const rd_kafka_AdminOptions_t *options, rd_kafka_queue_t *queue);
typedef const void *(*event_result_fn)(rd_kafka_event_t *event);
typedef const void **(*result_topics_fn)(const void *result, size_t *count);
typedef const char *(*description_name_fn)(const void *description);
typedef const void *(*description_topic_id_fn)(const void *description);
typedef const rd_kafka_error_t *(*description_error_fn)(const void *description);
typedef const char *(*uuid_base64_fn)(const void *uuid);

static struct {
    of_topic_names_fn of_topic_names;
    collection_destroy_fn collection_destroy;
    describe_topics_fn describe_topics;
    event_result_fn event_result;
    result_topics_fn result_topics;
    description_name_fn description_name;
    description_topic_id_fn description_topic_id;
    description_error_fn description_error;
    uuid_base64_fn uuid_base64;
    int available;
} api;

static pthread_once_t api_once = PTHREAD_ONCE_INIT;

static void resolve(void) {
    api.of_topic_names = (of_topic_names_fn)dlsym(RTLD_DEFAULT, "rd_kafka_TopicCollection_of_topic_names");
    api.collection_destroy = (collection_destroy_fn)dlsym(RTLD_DEFAULT, "rd_kafka_TopicCollection_destroy");
    api.describe_topics = (describe_topics_fn)dlsym(RTLD_DEFAULT, "rd_kafka_DescribeTopics");
    api.event_result = (event_result_fn)dlsym(RTLD_DEFAULT, "rd_kafka_event_DescribeTopics_result");
    api.result_topics = (result_topics_fn)dlsym(RTLD_DEFAULT, "rd_kafka_DescribeTopics_result_topics");
    api.description_name = (description_name_fn)dlsym(RTLD_DEFAULT, "rd_kafka_TopicDescription_name");
    api.description_topic_id = (description_topic_id_fn)dlsym(RTLD_DEFAULT, "rd_kafka_TopicDescription_topic_id");
    api.description_error = (description_error_fn)dlsym(RTLD_DEFAULT, "rd_kafka_TopicDescription_error");
    api.uuid_base64 = (uuid_base64_fn)dlsym(RTLD_DEFAULT, "rd_kafka_Uuid_base64str");
    api.available = api.of_topic_names && api.collection_destroy && api.describe_topics && api.event_result &&
                    api.result_topics && api.description_name && api.description_topic_id &&
                    api.description_error && api.uuid_base64;
}

int ckafka_topic_ids_available(void) {
    pthread_once(&api_once, resolve);
    return api.available;
}

static void append(char *errstr, size_t size, const char *topic, const char *reason) {
    size_t used = strnlen(errstr, size);
    if (used + 1 < size)
        snprintf(errstr + used, size - used, "%s%s: %s", used ? "; " : "", topic, reason);
}

/* librdkafka prints standard base64; Kafka's own tools print the URL-safe alphabet. */
static void copy_url_safe(char *out, const char *base64) {
    size_t i = 0;
    for (; base64[i] && base64[i] != '=' && i + 1 < CKAFKA_TOPIC_ID_SIZE; i++)
        out[i] = base64[i] == '+' ? '-' : base64[i] == '/' ? '_' : base64[i];
    out[i] = '\0';
}

int ckafka_topic_ids(struct rd_kafka_s *rk, const char *const *names, size_t count,
                     char *ids, size_t ids_size, char *errstr, size_t errstr_size, int timeout_ms) {
    if (errstr_size) errstr[0] = '\0';
    if (!ckafka_topic_ids_available()) return CKAFKA_UNAVAILABLE;
    if (ids_size < count * CKAFKA_TOPIC_ID_SIZE) {
        snprintf(errstr, errstr_size, "output buffer too small for %zu topic ids", count);
        return CKAFKA_FAILED;
    }
    memset(ids, 0, count * CKAFKA_TOPIC_ID_SIZE);

    rd_kafka_queue_t *queue = rd_kafka_queue_new(rk);
    void *collection = api.of_topic_names((const char **)names, count);
    rd_kafka_AdminOptions_t *options = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_ANY);
    char optionError[256];
    if (options) rd_kafka_AdminOptions_set_request_timeout(options, timeout_ms, optionError, sizeof optionError);
    api.describe_topics(rk, collection, options, queue);
    /* A little longer than the request's own timeout, so that its own error arrives first. */
    rd_kafka_event_t *event = rd_kafka_queue_poll(queue, timeout_ms + 1000);
    int found = CKAFKA_FAILED;
    if (!event) {
        snprintf(errstr, errstr_size, "DescribeTopics got no answer within %d ms", timeout_ms);
    } else if (rd_kafka_event_error(event)) {
        snprintf(errstr, errstr_size, "DescribeTopics failed: %s", rd_kafka_event_error_string(event));
    } else {
        const void *result = api.event_result(event);
        size_t described = 0;
        const void **descriptions = result ? api.result_topics(result, &described) : NULL;
        found = 0;
        for (size_t i = 0; i < count; i++) {
            const void *description = NULL;
            for (size_t j = 0; j < described && !description; j++) {
                const char *name = api.description_name(descriptions[j]);
                if (name && strcmp(name, names[i]) == 0) description = descriptions[j];
            }
            if (!description) { append(errstr, errstr_size, names[i], "not in the answer"); continue; }
            const rd_kafka_error_t *error = api.description_error(description);
            if (error && rd_kafka_error_code(error)) {
                append(errstr, errstr_size, names[i], rd_kafka_error_string(error));
                continue;
            }
            const void *uuid = api.description_topic_id(description);
            const char *base64 = uuid ? api.uuid_base64(uuid) : NULL;
            if (!base64 || strncmp(base64, "AAAAAAAAAAAAAAAAAAAAAA", 22) == 0) {
                append(errstr, errstr_size, names[i], "the broker gave no topic id");
                continue;
            }
            copy_url_safe(ids + i * CKAFKA_TOPIC_ID_SIZE, base64);
            found++;
        }
    }
    if (event) rd_kafka_event_destroy(event);
    if (options) rd_kafka_AdminOptions_destroy(options);
    api.collection_destroy(collection);
    rd_kafka_queue_destroy(queue);
    return found;
}
