/// A step template that becomes one step per item of an upstream step's list output, such as one
/// `node.ready/<name>` per node Terraform created. The item list is known only when `source` has
/// run; the executor persists it so a resume, `status` and `down` all see the same graph.
public struct FanOut: Sendable {
    /// The template's id; children are `id/item`. Steps depending on it wait for every child.
    public let id: StepID
    /// The step whose output lists the items.
    public let source: StepID
    /// Which output of `source` holds the items.
    public let output: String
    /// Further dependencies of every child, besides `source`.
    public let dependencies: [StepID]
    /// Builds the child step for one item; its id must be `id.child(item)`.
    public let make: @Sendable (String) -> any Step

    /// Creates a fan-out.
    public init(id: StepID, source: StepID, output: String, dependencies: [StepID] = [], make: @escaping @Sendable (String) -> any Step) {
        self.id = id
        self.source = source
        self.output = output
        self.dependencies = dependencies
        self.make = make
    }

    /// Every dependency of a child: the source first.
    public var allDependencies: [StepID] { [source] + dependencies.filter { $0 != source } }
}
