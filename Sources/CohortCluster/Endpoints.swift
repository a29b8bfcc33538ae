/// Endpoints whose traffic cannot leave this machine, where plain ZeroMQ is acceptable.
package enum Endpoints {
    package static func isLoopback(_ endpoint: String) -> Bool {
        if endpoint.hasPrefix("ipc://") || endpoint.hasPrefix("inproc://") { return true }
        guard endpoint.hasPrefix("tcp://") else { return false }
        var host = String(endpoint.dropFirst(6))
        if host.hasPrefix("["), let close = host.firstIndex(of: "]") {
            host = String(host[host.index(after: host.startIndex)..<close])
        } else if let colon = host.lastIndex(of: ":") {
            host = String(host[..<colon])
        }
        // A "tcp://eth0;…" source form or an interface name is not loopback unless it is "lo".
        return host == "localhost" || host == "::1" || host == "lo" || host.hasPrefix("127.")
    }
}
