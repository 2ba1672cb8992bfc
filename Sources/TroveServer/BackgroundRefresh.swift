internal import TroveHTTP
internal import Logging
internal import NIOCore
internal import TroveCore
internal import TroveRules

/// Refreshes a stale entry after its client has been answered, once however many requests ask for it: the
/// `Coalescer` keeps a second refresh of the key from starting in this instance, the store's fetch lock
/// in the others. It obeys the origin's gate but never waits in its queue (a later request can refresh instead).
///
/// Runs on the event loop of the request that started it, independently of that request's connection.
enum BackgroundRefresh {
    /// - Parameters:
    ///   - entryBody: the stale entry's body, stored again under a refreshed head when the origin answers 304 to
    ///     the revalidation.
    ///   - forwardedHost, limits: what the request that found the entry stale goes by (`clients.hosts`, `limits:`).
    static func start(
        _ refresh: ReadThroughStateMachine.Refresh, entryBody: ByteBuffer?, plan: RequestPlan, headers: [Header],
        forwardedHost: String?, limits: Limits, environment: ProxyEnvironment, stores: LoopStores, loop: any EventLoop
    ) {
        let store = stores.store
        let key = refresh.address.key
        guard environment.coalescer.startRefresh(key),
            let (started, action) = ReadThroughStateMachine.refreshing(
                plan: plan, refresh: refresh, requestHeaders: headers, clock: environment.clock),
            case .fetch(let fetch) = action,
            let request = OriginRequests.make(plan: plan, fetch: fetch, headers: headers, clientAddress: nil, body: nil,
                forwardedHost: forwardedHost, limits: limits, budget: environment.responseBodies)
        else { return }
        var machine = started
        stores.fetchLocks.lockFetch(key, ttl: Coalescer.fetchWindow(plan)) { lock in
            let held = try? lock.get()
            if held == .heldElsewhere {
                environment.coalescer.finish(key, .released)  // another instance refreshes it
                return
            }
            func end(_ outcome: Coalescer.Outcome, _ notice: FetchNotice) {
                environment.coalescer.finish(key, outcome)
                if let held { stores.fetchLocks.unlockFetch(key, lock: held, notice: notice) }
            }
            environment.call(request, on: loop, background: true).assumeIsolated().whenSuccess { result in
                switch result {
                case .busy:
                    end(.released, .released)
                case .failed(let error):
                    environment.logger.info("background refresh failed; the stale entry stays",
                        metadata: ["cache.key": "\(key)", "origin.error": "\(error.reason)"])
                    end(.failed(error), .released)
                case .response(let response):
                    switch machine.originResponded(status: response.status, headers: response.headers, bodyLength: response.bodyLength) {
                    case .store(let pending, _):
                        guard let body = pending.reusesStoredBody ? entryBody : response.body else {
                            return end(.released, .released)
                        }
                        environment.write(pending, body: body, to: store) { stored in
                            end(.entry(pending.meta, body), (try? stored.get()) != nil ? .stored : .released)
                        }
                    default:
                        end(.released, .released)  // not storable (or the origin failed): the stale entry stays
                    }
                }
            }
        }
    }
}
