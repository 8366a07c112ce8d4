#include <librdkafka/rdkafka.h>

/// rd_kafka_producev is variadic (Swift cannot call it): one message with a key, a value (NULL
/// for a tombstone) and headers, copied. On success librdkafka owns `headers`; on failure the
/// caller still does.
static inline rd_kafka_resp_err_t provision_produce(rd_kafka_t *rk, const char *topic,
                                                    const void *key, size_t key_len,
                                                    const void *value, size_t len,
                                                    rd_kafka_headers_t *headers) {
    return rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(key, key_len),
                             RD_KAFKA_V_VALUE((void *)value, len), RD_KAFKA_V_HEADERS(headers),
                             RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
}
