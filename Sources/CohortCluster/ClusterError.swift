/// A failure of the cluster itself: a worker could not start, none is left, a file is missing.
package struct ClusterError: Error, CustomStringConvertible {
    package var description: String
    package init(_ description: String) { self.description = description }
}
