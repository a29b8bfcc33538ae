import Glibc

/// The most memory this process has held resident so far (getrusage's ru_maxrss, which Linux
/// counts in KiB). Workers report it with every result, so a run's metrics show a worker whose
/// memory keeps growing long before the machine runs out.
enum PeakMemory {
    static func residentBytes() -> UInt64 {
        var usage = rusage()
        guard getrusage(RUSAGE_SELF.rawValue, &usage) == 0 else { return 0 }
        return UInt64(max(0, usage.ru_maxrss)) * 1024
    }
}
