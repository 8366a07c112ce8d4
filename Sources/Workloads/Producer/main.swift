import CRdKafka

// The producer arrives with the workloads issue; this placeholder proves the librdkafka binding links.
print("producer: librdkafka \(String(cString: rd_kafka_version_str()))")
