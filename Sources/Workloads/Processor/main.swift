import CMongoc
import CRdKafka

// The processor arrives with the workloads issue; this placeholder proves the libmongoc and librdkafka bindings link.
print("processor: libmongoc \(String(cString: mongoc_get_version())), librdkafka \(String(cString: rd_kafka_version_str()))")
