/// The `pipeline.images` an aws plan with K3s must name, as one plan line for tests' plans.
enum PlanImages {
    static let processor = "ghcr.io/acme/gpu-pipeline-processor:v1.2.3"
    static let producer = "ghcr.io/acme/gpu-pipeline-producer@sha256:" + String(repeating: "ab", count: 32)
    static let line = "pipeline: {images: {processor: '\(processor)', producer: '\(producer)'}}\n"
}
