internal import NIOCore
internal import Synchronization

/// Holds requests until a given number of them have arrived, then answers them all: tests prove that a client
/// sends requests side by side without asserting on timing (`X-Origin-Gather: N`, optionally
/// `X-Origin-Gather-Group` and `X-Origin-Gather-Ms`, the deadline, 10 s by default).
///
/// A group releases each batch of `N` together; a request still waiting at its deadline is answered alone,
/// marked `timeout`, so a client that serialised its requests makes the test fail (slowly), never hang.
final class Gathering: Sendable {
    /// What a released request learns: gathered with its batch, or given up at its deadline.
    enum Outcome: String, Sendable {
        case gathered, timeout
    }

    private struct Waiter {
        let id: Int
        let release: @Sendable (Outcome) -> Void
    }

    private struct State {
        var groups: [String: [Waiter]] = [:]
        var nextID = 0
    }

    private let state = Mutex(State())

    /// Bounds what a hostile or mistaken header can make the demo origin hold.
    static let maxBatch = 10_000
    static let longestWait = TimeAmount.seconds(60)

    /// Waits until `count` requests of `group` are here (or `deadline` passes), then calls `release` once.
    func join(group: String, count: Int, deadline: TimeAmount, on eventLoop: any EventLoop, release: @escaping @Sendable (Outcome) -> Void) {
        let count = min(max(1, count), Self.maxBatch)
        let (id, batch): (Int, [Waiter]) = state.withLock { state in
            let id = state.nextID
            state.nextID += 1
            state.groups[group, default: []].append(Waiter(id: id, release: release))
            guard state.groups[group]!.count >= count else { return (id, []) }
            return (id, state.groups.removeValue(forKey: group) ?? [])
        }
        guard batch.isEmpty else {
            for waiter in batch { waiter.release(.gathered) }
            return
        }
        eventLoop.scheduleTask(in: min(deadline, Self.longestWait)) {
            let waiter: Waiter? = self.state.withLock { state in
                guard let index = state.groups[group]?.firstIndex(where: { $0.id == id }) else { return nil }
                let waiter = state.groups[group]!.remove(at: index)
                if state.groups[group]!.isEmpty { state.groups[group] = nil }
                return waiter
            }
            waiter?.release(.timeout)
        }
    }
}
