/* Baseline for the processor benchmark: the raw bulk-insert rate of a MongoDB server for the same
 * documents. Reads every document the processor wrote (SOURCE: gpu_metrics and token_usage) into
 * memory, creates the same secondary indexes in TARGET (a fresh server of the same kind, so both
 * runs start from the same server state), then times a plain libmongoc loop inserting those
 * documents, byte for byte, in unordered bulks of BATCH, taking turns between the collections.
 * Prints {"inserted":N,"seconds":S,"rate":R}. */
#include <mongoc/mongoc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define COLLECTIONS 2
static const char *names[COLLECTIONS] = {"gpu_metrics", "token_usage"};

typedef struct { bson_t **docs; size_t count, capacity; } documents_t;

static void fail(const char *what, const bson_error_t *error) {
    fprintf(stderr, "c_bulk_insert: %s: %s\n", what, error ? error->message : "failed");
    exit(1);
}

static void load(mongoc_collection_t *source, documents_t *out) {
    bson_t filter = BSON_INITIALIZER;
    mongoc_cursor_t *cursor = mongoc_collection_find_with_opts(source, &filter, NULL, NULL);
    const bson_t *doc;
    bson_error_t error;
    while (mongoc_cursor_next(cursor, &doc)) {
        if (out->count == out->capacity) {
            out->capacity = out->capacity ? out->capacity * 2 : 1024;
            out->docs = realloc(out->docs, out->capacity * sizeof *out->docs);
        }
        out->docs[out->count++] = bson_copy(doc);
    }
    if (mongoc_cursor_error(cursor, &error)) fail("reading the processor's documents", &error);
    mongoc_cursor_destroy(cursor);
}

/* Creates in TARGET every index SOURCE has besides _id, with the same key and options. */
static void copy_indexes(mongoc_client_t *target_client, mongoc_collection_t *source, const char *target, const char *name) {
    mongoc_cursor_t *cursor = mongoc_collection_find_indexes_with_opts(source, NULL);
    const bson_t *index;
    bson_error_t error;
    while (mongoc_cursor_next(cursor, &index)) {
        bson_iter_t it;
        if (bson_iter_init_find(&it, index, "name") && strcmp(bson_iter_utf8(&it, NULL), "_id_") == 0) continue;
        bson_t command = BSON_INITIALIZER, indexes, spec;
        BSON_APPEND_UTF8(&command, "createIndexes", name);
        BSON_APPEND_ARRAY_BEGIN(&command, "indexes", &indexes);
        BSON_APPEND_DOCUMENT_BEGIN(&indexes, "0", &spec);
        bson_copy_to_excluding_noinit(index, &spec, "v", "ns", NULL);
        bson_append_document_end(&indexes, &spec);
        bson_append_array_end(&command, &indexes);
        if (!mongoc_client_command_simple(target_client, target, &command, NULL, NULL, &error)) fail("createIndexes", &error);
        bson_destroy(&command);
    }
    if (mongoc_cursor_error(cursor, &error)) fail("listIndexes", &error);
    mongoc_cursor_destroy(cursor);
}

int main(int argc, char **argv) {
    if (argc != 6) {
        fprintf(stderr, "usage: c_bulk_insert SOURCE_URI SOURCE_DATABASE TARGET_URI TARGET_DATABASE BATCH\n");
        return 2;
    }
    long batch = atol(argv[5]);
    mongoc_init();
    mongoc_client_t *source_client = mongoc_client_new(argv[1]), *client = mongoc_client_new(argv[3]);
    if (!source_client || !client) fail("invalid URI", NULL);
    mongoc_collection_t *targets[COLLECTIONS];
    documents_t docs[COLLECTIONS] = {{0}};
    size_t total = 0;
    for (int c = 0; c < COLLECTIONS; c++) {
        mongoc_collection_t *source = mongoc_client_get_collection(source_client, argv[2], names[c]);
        load(source, &docs[c]);
        copy_indexes(client, source, argv[4], names[c]);
        mongoc_collection_destroy(source);
        targets[c] = mongoc_client_get_collection(client, argv[4], names[c]);
        total += docs[c].count;
    }
    bson_t opts = BSON_INITIALIZER, reply;
    bson_error_t error;
    BSON_APPEND_BOOL(&opts, "ordered", false);
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (size_t start = 0, left = total; left > 0; start += (size_t)batch) {
        for (int c = 0; c < COLLECTIONS; c++) {
            if (start >= docs[c].count) continue;
            mongoc_bulk_operation_t *bulk = mongoc_collection_create_bulk_operation_with_opts(targets[c], &opts);
            for (size_t i = start; i < start + (size_t)batch && i < docs[c].count; i++, left--) {
                if (!mongoc_bulk_operation_insert_with_opts(bulk, docs[c].docs[i], NULL, &error)) fail("queue", &error);
            }
            if (!mongoc_bulk_operation_execute(bulk, &reply, &error)) fail("bulk insert", &error);
            bson_destroy(&reply);
            mongoc_bulk_operation_destroy(bulk);
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &b);
    double seconds = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
    printf("{\"inserted\":%zu,\"seconds\":%.3f,\"rate\":%.0f}\n", total, seconds, total / seconds);
    for (int c = 0; c < COLLECTIONS; c++) {
        for (size_t i = 0; i < docs[c].count; i++) bson_destroy(docs[c].docs[i]);
        free(docs[c].docs);
        mongoc_collection_destroy(targets[c]);
    }
    mongoc_client_destroy(client);
    mongoc_client_destroy(source_client);
    mongoc_cleanup();
    return 0;
}
