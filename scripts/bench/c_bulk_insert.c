/* Baseline for the processor benchmark: the raw bulk-insert rate of the same MongoDB server,
 * COUNT documents of the same JSON shape in unordered batches of BATCH, from a plain libmongoc loop,
 * into a collection with the same secondary index the processor's gpu_metrics has (gpu_uuid, timestamp). */
#include <mongoc/mongoc.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

int main(int argc, char **argv) {
    if (argc != 5) { fprintf(stderr, "usage: c_bulk_insert URI DATABASE COUNT BATCH\n"); return 2; }
    long count = atol(argv[3]), batch = atol(argv[4]);
    mongoc_init();
    mongoc_client_t *client = mongoc_client_new(argv[1]);
    mongoc_collection_t *coll = mongoc_client_get_collection(client, argv[2], "raw_baseline");
    bson_t opts = BSON_INITIALIZER, reply;
    bson_error_t index_error;
    bson_t *index = bson_new_from_json((const uint8_t *)
        "{\"createIndexes\":\"raw_baseline\",\"indexes\":[{\"key\":{\"gpu_uuid\":1,\"timestamp\":1},\"name\":\"gpu_uuid_timestamp_idx\"}]}",
        -1, &index_error);
    if (!index || !mongoc_client_command_simple(client, argv[2], index, NULL, NULL, &index_error)) {
        fprintf(stderr, "createIndexes: %s\n", index_error.message); return 1;
    }
    bson_destroy(index);
    bson_error_t error;
    BSON_APPEND_BOOL(&opts, "ordered", false);
    char json[512], id[64];
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (long start = 0; start < count; start += batch) {
        mongoc_bulk_operation_t *bulk = mongoc_collection_create_bulk_operation_with_opts(coll, &opts);
        for (long i = start; i < start + batch && i < count; i++) {
            snprintf(json, sizeof json,
                     "{\"gpu_uuid\":\"GPU-%ld\",\"node\":\"n\",\"timestamp\":%ld.0,\"DCGM_FI_DEV_GPU_UTIL\":%ld,"
                     "\"DCGM_FI_DEV_FB_USED\":40000,\"DCGM_FI_DEV_FB_FREE\":41559,\"DCGM_FI_DEV_GPU_TEMP\":61,"
                     "\"DCGM_FI_DEV_POWER_USAGE\":402.5,\"DCGM_FI_DEV_SM_CLOCK\":1650,"
                     "\"DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION\":123456789,\"DCGM_FI_DEV_XID_ERRORS\":0}", i % 8, i, i % 100);
            bson_t *doc = bson_new_from_json((const uint8_t *)json, -1, &error);
            snprintf(id, sizeof id, "raw/0/%ld", i);
            BSON_APPEND_UTF8(doc, "_id", id);
            mongoc_bulk_operation_insert_with_opts(bulk, doc, NULL, &error);
            bson_destroy(doc);
        }
        if (!mongoc_bulk_operation_execute(bulk, &reply, &error)) { fprintf(stderr, "%s\n", error.message); return 1; }
        bson_destroy(&reply);
        mongoc_bulk_operation_destroy(bulk);
    }
    clock_gettime(CLOCK_MONOTONIC, &b);
    double seconds = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
    printf("{\"inserted\":%ld,\"seconds\":%.3f,\"rate\":%.0f}\n", count, seconds, count / seconds);
    mongoc_collection_destroy(coll);
    mongoc_client_destroy(client);
    mongoc_cleanup();
    return 0;
}
