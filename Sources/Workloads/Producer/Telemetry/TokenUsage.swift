import Foundation

/// LLM token-usage events: which model served a request, tokens in and out, latency.
struct TokenUsage {
    static let models = ["llama-3.1-70b-instruct", "mixtral-8x22b", "qwen2.5-72b", "llama-3.1-8b-instruct"]

    /// One event as JSON, keyed by its request id; latency grows with completion length.
    static func event(sequence: Int, node: String, gpu: String, time: Double, random: inout SeededRandom) -> (key: String, json: String) {
        let model = models[Int(random.next() % UInt64(models.count))]
        let prompt = 16 + Int(random.next() % 4000)
        let completion = 1 + Int(random.next() % 1024)
        let latency = 40 + Double(completion) * (12 + random.unit() * 8)
        let requestID = String(format: "req-%@-%08d", node, sequence)
        let json = """
            {"request_id":"\(requestID)","model":"\(model)","node":"\(node)","gpu_uuid":"\(gpu)","timestamp":\(String(format: "%.3f", time)),\
            "prompt_tokens":\(prompt),"completion_tokens":\(completion),"total_tokens":\(prompt + completion),"latency_ms":\(String(format: "%.1f", latency))}
            """
        return (requestID, json)
    }
}
