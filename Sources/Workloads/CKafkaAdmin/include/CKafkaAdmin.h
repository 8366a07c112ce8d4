#ifndef PROVISION_CKAFKA_ADMIN_H
#define PROVISION_CKAFKA_ADMIN_H

/* Topic ids (KIP-516) through librdkafka's DescribeTopics admin API.
 *
 * The API arrived in librdkafka 2.3; the Debian headers the project builds against are 2.0.2 and
 * lack it, while the library loaded at run time (LD_LIBRARY_PATH, .tools/lib) is 2.16. So the
 * functions are looked up with dlsym(RTLD_DEFAULT, ...) when first needed: a process running on
 * an older librdkafka gets CKAFKA_UNAVAILABLE instead of failing to start. */

#include <stddef.h>

struct rd_kafka_s;

/* Bytes reserved per topic id in the output buffer: a 22-character id and its NUL, with room. */
#define CKAFKA_TOPIC_ID_SIZE 48

/* Results of ckafka_topic_ids (a count of ids found when not negative). */
#define CKAFKA_UNAVAILABLE (-1) /* the loaded librdkafka has no DescribeTopics */
#define CKAFKA_FAILED (-2)      /* the request failed as a whole: errstr says why */

/* 1 when the loaded librdkafka offers DescribeTopics and topic ids, 0 otherwise. */
int ckafka_topic_ids_available(void);

/* Describes `count` topics by name on the client `rk` (any client type) and writes the id of
 * topic i, in Kafka's URL-safe unpadded base64 form (22 characters), at
 * `ids + i * CKAFKA_TOPIC_ID_SIZE` (`ids_size` must be at least count * CKAFKA_TOPIC_ID_SIZE).
 * A topic that could not be described (it does not exist, say), or that the broker gives no id
 * (all zeroes), gets an empty string and its reason appended to `errstr`. Waits at most
 * `timeout_ms`. Returns the number of ids found, CKAFKA_UNAVAILABLE or CKAFKA_FAILED. */
int ckafka_topic_ids(struct rd_kafka_s *rk, const char *const *names, size_t count,
                     char *ids, size_t ids_size, char *errstr, size_t errstr_size, int timeout_ms);

#endif
