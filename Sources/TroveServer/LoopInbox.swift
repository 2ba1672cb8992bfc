import NIOCore
internal import Synchronization

/// Carries events from another thread (the origin client's) to one event loop in batches: the first event posted
/// while none waits schedules one task, and that task takes every event posted until it runs. A fast origin's
/// pieces then cost the loop one wake-up and one flush per batch rather than per piece (libcurl hands over 16 KiB
/// at a time). Order is kept: events are taken in the order they were posted, and a task scheduled later (the
/// transfer's completion) runs after the batch scheduled before it.
final class LoopInbox<Event: Sendable>: Sendable {
    private struct Waiting {
        var events: [Event] = []
        var scheduled = false
    }

    private let waiting = Mutex(Waiting())
    private let loop: any EventLoop
    private let run: @Sendable ([Event]) -> Void

    /// - Parameter run: called on `loop` with each batch, in order.
    init(on loop: any EventLoop, run: @escaping @Sendable ([Event]) -> Void) {
        self.loop = loop
        self.run = run
    }

    func post(_ event: Event) {
        let schedules = waiting.withLock { waiting -> Bool in
            waiting.events.append(event)
            defer { waiting.scheduled = true }
            return !waiting.scheduled
        }
        guard schedules else { return }
        loop.execute { [self] in
            let batch = waiting.withLock { waiting -> [Event] in
                waiting.scheduled = false
                defer { waiting.events.removeAll(keepingCapacity: true) }
                return waiting.events
            }
            run(batch)
        }
    }
}
