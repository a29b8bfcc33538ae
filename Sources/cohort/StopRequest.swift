#if canImport(Glibc)
import Glibc
#endif

/// Ctrl-C and SIGTERM during `cohort train`: the first asks the run to stop at the end of the
/// current step (it then writes a checkpoint and an interrupted summary); a second one quits at
/// once with the usual 128 + signal status.
enum StopRequest {
    /// The signal received, or 0. Written only by the handler, read between steps.
    nonisolated(unsafe) static var received: sig_atomic_t = 0
    /// A child in a process group of its own (a sweep's running point) that gets every signal
    /// this process gets, so it stops (or quits) with it; 0 for none.
    nonisolated(unsafe) static var child: pid_t = 0

    static let notice: StaticString = "\ncohort: stopping at the end of this step (press Ctrl-C again to quit at once)\n"

    static func install() {
        // A parent may have started us with these blocked (Foundation's Process does): unblock.
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, SIGINT)
        sigaddset(&set, SIGTERM)
        sigprocmask(SIG_UNBLOCK, &set, nil)
        for signalNumber in [SIGINT, SIGTERM] {
            signal(signalNumber) { number in
                if StopRequest.child > 0 { kill(StopRequest.child, number) }
                if StopRequest.received != 0 { _exit(128 + number) }
                StopRequest.received = number
                // Only async-signal-safe calls here: write(2) of a static string.
                _ = write(STDERR_FILENO, StopRequest.notice.utf8Start, StopRequest.notice.utf8CodeUnitCount)
            }
        }
    }

    /// The signal that asked for a stop, if any.
    static var requested: Int32? { received == 0 ? nil : received }
}
