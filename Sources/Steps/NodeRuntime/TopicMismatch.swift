/// A pipeline topic whose partition count is not the plan's: made by hand, or auto-created by a
/// client before `provision` could create it. Kafka cannot take partitions away, so `up` does
/// not repair it: it names the topic and the commands that will.
package struct TopicMismatch: Error, CustomStringConvertible, Sendable {
    let topic: String
    let partitions: Int
    let planned: Int
    let broker: PlacedService

    package var description: String {
        let url = "tcp://\(broker.node.address):\(ProcessesRuntime.Port.broker)"
        return """
            topic \(topic) has \(partitions) partitions, the plan says \(planned) (pipeline.partitions); a topic's \
            partitions cannot be taken away. To create it again with \(planned) (its records are lost): on \
            \(broker.node.name) run '\(broker.unit.command) topic delete \(topic) --broker \(url)', then 'provision up'; \
            or set pipeline.partitions: \(partitions) in the plan
            """
    }
}
