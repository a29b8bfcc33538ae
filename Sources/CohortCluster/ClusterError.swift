/// A failure of the cluster itself: a worker could not start, none is left, a file is missing.
struct ClusterError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
