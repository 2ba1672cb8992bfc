public import Logging
public import NIOCore
public import TroveCore
internal import Synchronization
internal import TroveHTTP

/// The Redis `CacheStore` for one event loop, over that loop's own pipelined connection: entries, purges, health
/// and shutdown. Where each thing lives is `RedisKeys`; the fetch locks and delivery claims on the same connection
/// are `RedisFetchLocks` and `RedisDeliveryClaims`.
///
/// A lookup is one round trip (`GET` and `MGET` pipelined); a purge is one command per counter (`INCRBY` 2^32
/// when hard, `softPurgeScript` when soft: see `Generation`). Nothing scans
/// the keyspace. Purges that fail while Redis is away are queued (shared by every loop's store) and replayed
/// when a connection comes back; until then lookups report the store unavailable, so no entry a queued purge
/// covers can be served.
public final class RedisStore: CacheStore {
    public typealias Body = ByteBuffer

    private let link: any RedisLink
    /// The link when it is one Redis's connection: the lookup then sends one command, encoded by hand.
    private let single: RedisConnection?
    private let keys: RedisKeys
    private let queue: PurgeQueue
    /// Large bodies kept in process, so that their hits read only the head from Redis.
    let bodies: LocalBodies

    /// Bytes of large bodies a loop's store holds in process (`LocalBodies`) when nothing else does.
    static let heldBodies = 32 << 20

    init(link: any RedisLink, keys: RedisKeys, queue: PurgeQueue, localBodies: Int = RedisStore.heldBodies) {
        self.link = link
        self.single = link as? RedisConnection
        self.keys = keys
        self.queue = queue
        self.bodies = LocalBodies(capacity: localBodies)
    }

    /// Whether the connection is up and no purge waits to be replayed; otherwise, why not.
    public var health: StoreHealth {
        if link.isReady && !queue.isEmpty {
            return StoreHealth(ready: false, status: "replaying \(queue.count) purges made while Redis was away")
        }
        return StoreHealth(ready: link.isReady, status: link.status)
    }

    func entryKey(_ key: String) -> String { keys.entry(key) }

    func chunkKey(_ key: String, _ chunks: EntryChunks, _ index: Int) -> String { keys.chunk(key, chunks, index) }

    /// Bodies larger than this are stored in chunks of this size: a hit then reads the head alone, and each
    /// client holds one chunk at a time, not the body.
    static let chunkSize = 1 << 20
    /// Chunks sent to Redis per batch: each batch is answered well within the command timeout.
    static let chunksPerBatch = 4
    /// How much longer chunks live than their head, in milliseconds: a client that began reading just before the
    /// head expired still finds every chunk.
    static let chunkSlack: Int64 = 10 * 60 * 1000

    func counterKey(_ counter: PurgeCounter) -> String { keys.counter(counter) }

    // MARK: CacheStore

    public func lookup(_ address: EntryAddress, completion: @escaping (LookupOutcome<ByteBuffer>) -> Void) {
        guard address.learnsTags else { return lookupEntry(address, completion: completion) }
        lookupEntry(address) { outcome in
            // An entry with tags from the origin: their counters are read now that the entry names them.
            guard case .found(let meta, let body, let generations, _) = outcome else { return completion(outcome) }
            let learned = OriginTags.countersToCheck(meta, address: address)
            guard !learned.isEmpty else { return completion(outcome) }
            self.readCounters(learned) { result in
                switch result {
                case .success(let values): completion(.found(meta, body, generations: generations + values))
                case .failure(let error): completion(.unavailable(error))
                }
            }
        }
    }

    /// The current values of these counters, in order, in one batch: the shared ones with one `MGET`, each key's
    /// own with a `GET` (in a cluster they sit in their entries' slots, elsewhere).
    private func readCounters(_ counters: [PurgeCounter], completion: @escaping (Result<[Int64], StoreError>) -> Void) {
        let shared = counters.indices.filter { RedisKeys.isShared(counters[$0]) }
        let own = counters.indices.filter { !RedisKeys.isShared(counters[$0]) }
        var commands: [[RESPArgument]] = []
        if !shared.isEmpty { commands.append(["MGET"] + shared.map { .string(counterKey(counters[$0])) }) }
        for index in own { commands.append(["GET", .string(counterKey(counters[index]))]) }
        link.send(commands) { result in
            switch result {
            case .failure(let error):
                completion(.failure(error))
            case .success(let replies):
                var values = [Int64](repeating: 0, count: counters.count)
                var next = 0
                if !shared.isEmpty {
                    guard case .array(let read) = replies[0], read.count == shared.count, let generations = Self.generations(read[...]) else {
                        return completion(.failure(.protocolError("MGET answered \(replies[0])")))
                    }
                    for (index, value) in zip(shared, generations) { values[index] = value }
                    next = 1
                }
                for (offset, index) in own.enumerated() {
                    guard let value = Self.generations(replies[(next + offset)...].prefix(1))?.first else {
                        return completion(.failure(.protocolError("GET answered \(replies[next + offset])")))
                    }
                    values[index] = value
                }
                completion(.success(values))
            }
        }
    }

    /// What an entry held elsewhere (`TieredStore`'s in-process tier) depends on: `address.counters`, then the
    /// counters of the tags its origin named.
    func countersToCheck(for address: EntryAddress, meta: EntryMeta) -> [PurgeCounter] {
        address.learnsTags ? address.counters + OriginTags.countersToCheck(meta, address: address) : address.counters
    }

    /// Whether purges made while Redis was away (or before a failover) wait to be applied: until they are, no
    /// counter read from Redis, or remembered from it, may be trusted.
    var replaysPending: Bool { !queue.isEmpty }

    /// The names of the counters `request` moves in Redis (its own, and for each tag its stamp and the sequence).
    func counterNames(movedBy request: PurgeRequest) -> [String] {
        var names = request.counters.map(counterKey)
        let stamps = request.counters.compactMap { if case .tag(let tag) = $0 { counterKey(.tagPurged(tag)) } else { nil } }
        if !stamps.isEmpty { names += stamps + [counterKey(.tagSequence)] }
        return names
    }

    /// The current values of `counters` (`countersToCheck`), in one round trip. Fails while purges wait to be
    /// replayed, as a lookup does, and so does an answer that arrives once some are queued again.
    func read(_ counters: [PurgeCounter], completion: @escaping (Result<[Int64], StoreError>) -> Void) {
        guard queue.isEmpty else {
            return completion(.failure(.unavailable("purges made while Redis was away are not replayed yet")))
        }
        readCounters(counters) { result in
            guard self.queue.isEmpty else {
                return completion(.failure(.unavailable("purges are being applied again on a new Redis master")))
            }
            completion(result)
        }
    }

    private func lookupEntry(_ address: EntryAddress, completion: @escaping (LookupOutcome<ByteBuffer>) -> Void) {
        guard queue.isEmpty else {
            completion(.unavailable(.unavailable("purges made while Redis was away are not replayed yet")))
            return
        }
        if bodies.holds(address.key) {
            guard let single else { return lookupHeadInCluster(address, completion: completion) }
            return lookupHead(address, single, completion: completion)
        }
        guard let single else { return lookupInCluster(address, completion: completion) }
        // One command for the entry and every counter it depends on: one reply to parse, and half the work
        // for Redis of a GET plus an MGET.
        // Encoded straight into the buffer: the keys are never built as Strings (this runs for every request).
        let counters = address.counterCount
        var buffer = ByteBufferAllocator().buffer(capacity: 96 + 2 * address.key.utf8.count + 48 * address.tags.count)
        RESPEncoder.writeArrayHeader(2 + counters, into: &buffer)
        buffer.writeStaticString("$4\r\nMGET\r\n")
        keys.writeEntry(address.key, into: &buffer)
        keys.writeCounters(of: address, into: &buffer)
        single.send(encoded: buffer, commands: 1) { result in
            switch result {
            case .failure(let error):
                completion(.unavailable(error))
            case .success(let replies):
                guard case .array(let values) = replies[0], values.count == counters + 1,
                    let generations = Self.generations(values.dropFirst())
                else {
                    completion(.unavailable(.protocolError("MGET answered \(replies[0])")))
                    return
                }
                self.found(values[0], generations: generations, for: address, completion: completion)
            }
        }
    }

    /// The lookup in a cluster: the entry with its key's counter (their slot), and the shared counters (theirs),
    /// two commands sent at once to at most two masters; one round trip.
    private func lookupInCluster(_ address: EntryAddress, completion: @escaping (LookupOutcome<ByteBuffer>) -> Void) {
        let counters = address.counters
        let shared = counters.filter(RedisKeys.isShared)
        link.send([
            ["MGET", .string(keys.entry(address.key)), .string(keys.counter(.key(address.counterKey)))],
            ["MGET"] + shared.map { .string(keys.counter($0)) },
        ]) { result in
            switch result {
            case .failure(let error):
                completion(.unavailable(error))
            case .success(let replies):
                // A promoted master found on the way (a `MOVED` to it) queued recent purges again: what it answered
                // may predate them.
                guard self.queue.isEmpty else {
                    return completion(.unavailable(.unavailable("purges are being applied again on a promoted Redis Cluster master")))
                }
                guard case .array(let own) = replies[0], own.count == 2, case .array(let read) = replies[1], read.count == shared.count,
                    let keyGeneration = Self.generations(own[1...]), let sharedGenerations = Self.generations(read[...])
                else {
                    return completion(.unavailable(.protocolError("MGET answered \(replies)")))
                }
                // Back in `EntryAddress.counters`' order: everything, the route, the key, the tags (and the sequence).
                let generations = Array(sharedGenerations[..<2]) + keyGeneration + sharedGenerations[2...]
                self.found(own[0], generations: generations, for: address, completion: completion)
            }
        }
    }

    /// What the value read under an entry's key means: its entry, or a miss.
    private func found(
        _ reply: RESPValue, generations: [Int64], for address: EntryAddress, completion: @escaping (LookupOutcome<ByteBuffer>) -> Void
    ) {
        guard case .bulkString(let value) = reply, let (meta, body) = Self.decode(value) else {
            // Absent, or not an entry of this format (an older Trove, or a foreign value): a miss.
            return completion(.notFound(generations: generations))
        }
        keepLarge(body, of: value, for: address.key)
        completion(.found(meta, body, generations: generations))
    }

    /// A lookup of a key whose large body this loop holds: the first 4 KiB of the value (the head) and the
    /// counters, in one round trip; the held body answers when the head is the one it was stored under, else the
    /// whole value is read (a second round trip) and held instead.
    private func lookupHead(_ address: EntryAddress, _ single: RedisConnection, completion: @escaping (LookupOutcome<ByteBuffer>) -> Void) {
        let key = address.key
        let counters = address.counterCount
        var buffer = ByteBufferAllocator().buffer(capacity: 160 + 2 * key.utf8.count + 48 * address.tags.count)
        RESPEncoder.writeArrayHeader(4, into: &buffer)
        buffer.writeStaticString("$8\r\nGETRANGE\r\n")
        keys.writeEntry(key, into: &buffer)
        buffer.writeStaticString("$1\r\n0\r\n")
        RESPEncoder.writeBulk(String(LocalBodies.headPrefix - 1), "", "", into: &buffer)
        RESPEncoder.writeArrayHeader(1 + counters, into: &buffer)
        buffer.writeStaticString("$4\r\nMGET\r\n")
        keys.writeCounters(of: address, into: &buffer)
        single.send(encoded: buffer, commands: 2) { result in
            switch result {
            case .failure(let error):
                completion(.unavailable(error))
            case .success(let replies):
                guard case .bulkString(let prefix) = replies[0], case .array(let values) = replies[1], values.count == counters,
                    let generations = Self.generations(values[...])
                else {
                    completion(.unavailable(.protocolError("GETRANGE/MGET answered \(replies)")))
                    return
                }
                self.headRead(prefix, generations: generations, key: key, completion: completion)
            }
        }
    }

    /// `lookupHead` in a cluster: the head and the key's counter from the entry's master, the shared counters
    /// from theirs, in parallel (as `lookupInCluster`).
    private func lookupHeadInCluster(_ address: EntryAddress, completion: @escaping (LookupOutcome<ByteBuffer>) -> Void) {
        let shared = address.counters.filter(RedisKeys.isShared)
        link.send([
            ["GETRANGE", .string(keys.entry(address.key)), "0", .string(String(LocalBodies.headPrefix - 1))],
            ["GET", .string(keys.counter(.key(address.counterKey)))],
            ["MGET"] + shared.map { .string(keys.counter($0)) },
        ]) { result in
            switch result {
            case .failure(let error):
                completion(.unavailable(error))
            case .success(let replies):
                guard self.queue.isEmpty else {
                    return completion(.unavailable(.unavailable("purges are being applied again on a promoted Redis Cluster master")))
                }
                guard case .bulkString(let prefix) = replies[0], let keyGeneration = Self.generations(replies[1...1]),
                    case .array(let read) = replies[2], read.count == shared.count, let sharedGenerations = Self.generations(read[...])
                else {
                    return completion(.unavailable(.protocolError("GETRANGE/GET/MGET answered \(replies)")))
                }
                let generations = Array(sharedGenerations[..<2]) + keyGeneration + sharedGenerations[2...]
                self.headRead(prefix, generations: generations, key: address.key, completion: completion)
            }
        }
    }

    /// What the first bytes of an entry's value (and its counters) mean: the held body under the same head, the
    /// small entry itself, a miss, or (the held body is out of date) a read of the whole value.
    private func headRead(
        _ prefix: ByteBuffer, generations: [Int64], key: String, completion: @escaping (LookupOutcome<ByteBuffer>) -> Void
    ) {
        let found: (meta: EntryMeta, body: ByteBuffer?)? = prefix.withUnsafeReadableBytes { bytes in
            guard let (meta, offset) = EntryCodec.decodeHead(prefix: bytes) else { return nil }
            let inline = meta.chunks == nil ? meta.bodyLength : 0
            if bytes.count == offset + inline {
                return (meta, prefix.getSlice(at: prefix.readerIndex + offset, length: inline))  // it shrank, or is chunked now
            }
            return (meta, bodies.body(for: key, head: UnsafeRawBufferPointer(rebasing: bytes[..<offset])))
        }
        if let found, let body = found.body {
            completion(.found(found.meta, body, generations: generations))
        } else if prefix.readableBytes == 0 {
            bodies.forget(key)
            completion(.notFound(generations: generations))
        } else {
            readWholeEntry(key, generations: generations, completion: completion)
        }
    }

    /// The whole value of a key whose held body is out of date (or whose head is longer than the prefix read).
    private func readWholeEntry(_ key: String, generations: [Int64], completion: @escaping (LookupOutcome<ByteBuffer>) -> Void) {
        link.send([["GET", .string(entryKey(key))]]) { result in
            switch result {
            case .failure(let error):
                completion(.unavailable(error))
            case .success(let replies):
                guard case .bulkString(let value) = replies[0], let (meta, body) = Self.decode(value) else {
                    self.bodies.forget(key)
                    completion(.notFound(generations: generations))
                    return
                }
                self.keepLarge(body, of: value, for: key)
                completion(.found(meta, body, generations: generations))
            }
        }
    }

    /// Holds a large body read with its value (the head is the value's bytes before the body).
    private func keepLarge(_ body: ByteBuffer, of value: ByteBuffer, for key: String) {
        guard body.readableBytes >= LocalBodies.minimumBody,
            let head = value.getBytes(at: value.readerIndex, length: value.readableBytes - body.readableBytes)
        else { return }
        bodies.keep(body, head: head, for: key)
    }

    public func store(_ write: StoreWrite<ByteBuffer>, completion: @escaping (Result<Void, StoreError>) -> Void) {
        guard write.address.learnsTags else { return storeEntry(write, completion: completion) }
        // Origin tags: their stamps and counters are read first, and the entry is stored only if none was purged
        // since its fetch began (`OriginTags`).
        let counters = OriginTags.countersToRecord(write.meta)
        func record(_ values: [Int64]) {
            guard let meta = OriginTags.recorded(write.meta, address: write.address, values: values) else {
                return completion(.failure(.purgedWhileFetched))
            }
            storeEntry(StoreWrite(address: write.address, meta: meta, body: write.body, expireAfter: write.expireAfter), completion: completion)
        }
        guard !counters.isEmpty else { return record([]) }
        readCounters(counters) { result in
            switch result {
            case .success(let values): record(values)
            case .failure(let error): completion(.failure(error))
            }
        }
    }

    private func storeEntry(_ write: StoreWrite<ByteBuffer>, completion: @escaping (Result<Void, StoreError>) -> Void) {
        if let chunks = write.meta.chunks {
            return restoreChunked(write, chunks, completion: completion)
        }
        if write.body.readableBytes > Self.chunkSize {
            return storeChunked(write, completion: completion)
        }
        let head = EntryCodec.encodeHead(write.meta)
        var value = ByteBufferAllocator().buffer(capacity: head.count + write.body.readableBytes)
        value.writeBytes(head)
        value.writeImmutableBuffer(write.body)
        link.send([["SET", .string(entryKey(write.address.key)), .bytes(value), "PX", .string(String(write.expireAfter))]]) { result in
            switch result {
            case .success(let replies):
                if case .error(let message) = replies[0] {
                    completion(.failure(.protocolError("SET failed: \(message)")))
                } else {
                    if write.body.readableBytes >= LocalBodies.minimumBody { self.bodies.keep(write.body, head: head, for: write.address.key) }
                    completion(.success(()))
                }
            case .failure(let error):
                completion(.failure(error))
            }
        }
    }

    /// Writes a large body's chunks, a batch at a time, then its head: the head is never written unless every
    /// chunk it names was, so no lookup finds a half-written entry.
    private func storeChunked(_ write: StoreWrite<ByteBuffer>, completion: @escaping (Result<Void, StoreError>) -> Void) {
        var meta = write.meta
        let chunks = EntryChunks(nonce: .random(in: 1 ... .max), size: Self.chunkSize)
        meta.chunks = chunks
        let body = write.body
        let count = chunks.count(of: body.readableBytes)
        let chunkLife = String(write.expireAfter.addingClamped(Self.chunkSlack))
        func batch(from index: Int) {
            guard index < count else {
                return setHead(EntryCodec.encodeHead(meta), key: write.address.key, expireAfter: write.expireAfter, completion: completion)
            }
            let end = min(count, index + Self.chunksPerBatch)
            let commands: [[RESPArgument]] = (index..<end).map { chunk in
                let slice = body.getSlice(at: body.readerIndex + chunk * chunks.size, length: chunks.length(of: chunk, in: body.readableBytes))!
                return ["SET", .string(chunkKey(write.address.key, chunks, chunk)), .bytes(slice), "PX", .string(chunkLife)]
            }
            link.send(commands) { result in
                switch result {
                case .success(let replies):
                    if let error = replies.first(where: { if case .error = $0 { true } else { false } }) {
                        return completion(.failure(.protocolError("SET of a chunk failed: \(error)")))
                    }
                    batch(from: end)
                case .failure(let error):
                    completion(.failure(error))
                }
            }
        }
        batch(from: 0)
    }

    /// Stores a chunked entry's head again (a revalidation kept its body): its chunks live on as long, and the
    /// head is written only if every chunk is still there.
    private func restoreChunked(
        _ write: StoreWrite<ByteBuffer>, _ chunks: EntryChunks, completion: @escaping (Result<Void, StoreError>) -> Void
    ) {
        let chunkLife = String(write.expireAfter.addingClamped(Self.chunkSlack))
        let commands: [[RESPArgument]] = (0..<chunks.count(of: write.meta.bodyLength)).map {
            ["PEXPIRE", .string(chunkKey(write.address.key, chunks, $0)), .string(chunkLife)]
        }
        link.send(commands) { result in
            switch result {
            case .success(let replies):
                guard replies.allSatisfy({ if case .integer(1) = $0 { true } else { false } }) else {
                    // A chunk is gone (evicted): the old head would name it; drop it, the next request fetches.
                    self.link.send([["DEL", .string(self.entryKey(write.address.key))]]) { _ in }
                    return completion(.failure(.protocolError("a chunk of the entry is gone")))
                }
                self.setHead(EntryCodec.encodeHead(write.meta), key: write.address.key, expireAfter: write.expireAfter, completion: completion)
            case .failure(let error):
                completion(.failure(error))
            }
        }
    }

    private func setHead(_ head: [UInt8], key: String, expireAfter: Int64, completion: @escaping (Result<Void, StoreError>) -> Void) {
        bodies.forget(key)
        link.send([["SET", .string(entryKey(key)), .bytes(ByteBuffer(bytes: head)), "PX", .string(String(expireAfter))]]) { result in
            switch result {
            case .success(let replies):
                if case .error(let message) = replies[0] {
                    completion(.failure(.protocolError("SET failed: \(message)")))
                } else {
                    completion(.success(()))
                }
            case .failure(let error):
                completion(.failure(error))
            }
        }
    }

    public func readChunk(_ key: String, _ chunks: EntryChunks, index: Int, completion: @escaping (Result<ByteBuffer?, StoreError>) -> Void) {
        link.send([["GET", .string(chunkKey(key, chunks, index))]]) { result in
            switch result {
            case .success(let replies):
                if case .bulkString(let chunk) = replies[0] { return completion(.success(chunk)) }
                // Evicted (Redis under `maxmemory`), or expired: the head names what is gone. Dropped, so the
                // next request fetches the answer again.
                self.link.send([["DEL", .string(self.entryKey(key))]]) { _ in }
                completion(.success(nil))
            case .failure(let error):
                completion(.failure(error))
            }
        }
    }

    /// Counters increased per batch of commands. A purge of 100k tags sent as one batch outlived the command
    /// timeout, which closed the connection, queued the purge, and every reconnect replayed it and timed out
    /// again: the store stayed down until a restart. Each slice is small enough to be answered well within the
    /// timeout, and has its own deadline, because the next is sent only when the last is answered.
    static let purgeSlice = 256

    public func purge(_ request: PurgeRequest, completion: @escaping (Result<PurgeReport, StoreError>) -> Void) {
        purge(request, replaying: nil, completion: completion)
    }

    /// Applies `request` slice by slice. When a slice fails, what is left of the purge (that slice and the ones
    /// after it) is queued, never lost: replayed as soon as a connection is back (an INCR twice only
    /// invalidates twice). `replaying` is the queued request this call replays: on success it leaves the
    /// queue, on failure it is replaced by what is left.
    private func purge(
        _ request: PurgeRequest, replaying: PurgeRequest?, completion: @escaping (Result<PurgeReport, StoreError>) -> Void
    ) {
        let counters = request.counters
        let keys = request.keys
        // A soft-purged entry stays (served stale while it is refreshed): only hard-purged keys' entries go.
        let keysStay = request.softensKeys
        let lifetime = String(request.counterLifetime)
        if !keysStay { for key in keys { bodies.forget(key) } }
        var found: [Bool] = []
        found.reserveCapacity(keys.count)

        func failed(at offset: Int, _ error: StoreError) {
            let left = request.dropping(first: offset)
            if let replaying {
                queue.replace(replaying, with: left)
            } else {
                queue.append(left)
            }
            completion(.failure(error))
        }

        // The counters first (what invalidates), then the purged keys' entries (frees memory now and tells the
        // caller whether there was anything; not needed for correctness).
        func incrementSlice(from offset: Int) {
            guard offset < counters.count else { return deleteSlice(from: 0) }
            let slice = counters[offset..<min(counters.count, offset + Self.purgeSlice)]
            var commands: [[RESPArgument]] = []
            commands.reserveCapacity(slice.count * 2 + 2)
            // Tags are stamped with the tag-purge sequence before their counters move (`OriginTags`); the
            // connection keeps the order.
            let stamps: [RESPArgument] = slice.compactMap { if case .tag(let tag) = $0 { .string(counterKey(.tagPurged(tag))) } else { nil } }
            if !stamps.isEmpty {
                commands.append(["EVAL", .string(Self.stampScript), .string(String(stamps.count + 1)), .string(counterKey(.tagSequence))]
                    + stamps + [.string(lifetime)])
            }
            // The slice's soft counters go in one script call (its keys, then each one's lifetime) for the shared
            // ones, and one per key counter: a script's keys must share a slot in a cluster.
            var softKeys: [RESPArgument] = []
            var softLifetimes: [RESPArgument] = []
            var ownSoftKeys: [RESPArgument] = []
            for counter in slice {
                let key = RESPArgument.string(counterKey(counter))
                let expiry = counter == .everything ? "" : lifetime
                if request.softMark(for: counter) != nil {
                    if RedisKeys.isShared(counter) {
                        softKeys.append(key)
                        softLifetimes.append(.string(expiry))
                    } else {
                        ownSoftKeys.append(key)
                    }
                    continue
                }
                commands.append(["INCRBY", key, .string(String(Generation.hardStep))])
                if !expiry.isEmpty { commands.append(["PEXPIRE", key, .string(expiry)]) }
            }
            if let mark = request.softMark {
                if !softKeys.isEmpty {
                    commands.append(["EVAL", .string(Self.softPurgeScript), .string(String(softKeys.count))] + softKeys
                        + [.string(String(mark))] + softLifetimes)
                }
                for key in ownSoftKeys {
                    commands.append(["EVAL", .string(Self.softPurgeScript), "1", key, .string(String(mark)), .string(lifetime)])
                }
            }
            link.send(commands) { result in
                switch result {
                case .success(let replies):
                    if let error = replies.first(where: { if case .error = $0 { true } else { false } }) {
                        return failed(at: offset, .protocolError("purge failed: \(error)"))
                    }
                    incrementSlice(from: offset + slice.count)
                case .failure(let error):
                    failed(at: offset, error)
                }
            }
        }

        func deleteSlice(from offset: Int) {
            guard offset < keys.count else { return done() }
            let slice = keys[offset..<min(keys.count, offset + Self.purgeSlice)]
            link.send(slice.map { [keysStay ? "EXISTS" : "DEL", .string(entryKey($0))] }) { result in
                if case .success(let replies) = result {
                    found += replies.map { if case .integer(let n) = $0 { n > 0 } else { false } }
                } else {
                    found += slice.map { _ in false }
                }
                deleteSlice(from: offset + slice.count)
            }
        }

        func done() {
            if let replaying { queue.remove(replaying) }
            queue.noteApplied(request)
            completion(.success(PurgeReport(request, found: found)))
        }

        incrementSlice(from: 0)
    }

    public func inspect(key: String, completion: @escaping (Result<EntryInspection?, StoreError>) -> Void) {
        link.send([["GET", .string(entryKey(key))]]) { result in
            switch result {
            case .failure(let error):
                completion(.failure(error))
            case .success(let replies):
                guard case .bulkString(let value) = replies[0], let (meta, _) = Self.decode(value) else {
                    completion(.success(nil))
                    return
                }
                let address = EntryAddress.ofStored(key, meta: meta)
                let counters = (address.counters + OriginTags.countersToCheck(meta, address: address)).map { RESPArgument.string(self.counterKey($0)) }
                self.link.send([["MGET"] + counters]) { result in
                    switch result {
                    case .failure(let error):
                        completion(.failure(error))
                    case .success(let replies):
                        var current: [Int64]?
                        if case .array(let values) = replies[0], values.count == counters.count {
                            current = Self.generations(values[...])
                        }
                        let valid = current.map { meta.change(for: address, generations: $0) == .none } ?? false
                        completion(.success(EntryInspection(meta: meta, valid: valid)))
                    }
                }
            }
        }
    }

    /// Moves each counter's soft mark (its value's low 32 bits, `Generation`) to ARGV[1], or one past where it was
    /// when that is later, and renews its lifetime (ARGV[1 + i] for KEYS[i]; none when empty). The low bits are
    /// taken from the decimal text digit by digit: Lua's numbers are doubles, exact only to 2^53, and a counter's
    /// value can pass that; the step added stays below 2^32, and `INCRBY` adds it exactly.
    static let softPurgeScript = """
        local mark = tonumber(ARGV[1])
        for k = 1, #KEYS do
          local text = redis.call('GET', KEYS[k]) or '0'
          local low = 0
          for i = 1, #text do low = (low * 10 + string.byte(text, i) - 48) % 4294967296 end
          local step = mark - low
          if step < 1 then step = 1 end
          redis.call('INCRBY', KEYS[k], step)
          if ARGV[1 + k] ~= '' then redis.call('PEXPIRE', KEYS[k], ARGV[1 + k]) end
        end
        return #KEYS
        """

    /// Moves the tag-purge sequence (KEYS[1]) on and stamps each tag (KEYS[2...]) with its new value, kept for
    /// ARGV[1] milliseconds (`OriginTags`).
    static let stampScript = """
        local sequence = redis.call('INCR', KEYS[1])
        for k = 2, #KEYS do redis.call('SET', KEYS[k], sequence, 'PX', ARGV[1]) end
        return sequence
        """

    // MARK: Replay

    func replayQueuedPurges() {
        guard let next = queue.first else { return }
        purge(next, replaying: next) { result in
            // On failure, what is left waits in the queue for the next link.
            guard case .success = result else { return }
            self.replayQueuedPurges()
        }
    }

    // MARK: Decoding

    /// A decimal integer (as INCR leaves it), read without making a String of it.
    static func integer(_ buffer: ByteBuffer) -> Int64? {
        buffer.withUnsafeReadableBytes { bytes -> Int64? in
            var index = 0
            var negative = false
            if bytes.first == UInt8(ascii: "-") {
                negative = true
                index = 1
            }
            guard index < bytes.count, bytes.count - index <= 18 else { return nil }
            var value: Int64 = 0
            while index < bytes.count {
                let digit = bytes[index] &- UInt8(ascii: "0")
                guard digit < 10 else { return nil }
                value = value * 10 + Int64(digit)
                index += 1
            }
            return negative ? -value : value
        }
    }

    /// The head and body of a stored value (the body is empty when it is kept in chunks).
    static func decode(_ value: ByteBuffer) -> (EntryMeta, ByteBuffer)? {
        let head = value.withUnsafeReadableBytes { EntryCodec.decodeHead($0) }
        guard let (meta, offset) = head,
            let body = value.getSlice(at: value.readerIndex + offset, length: meta.chunks == nil ? meta.bodyLength : 0)
        else { return nil }
        return (meta, body)
    }

    /// The counters' values from MGET's replies (absent is 0); nil when one is not a number.
    static func generations(_ values: ArraySlice<RESPValue>) -> [Int64]? {
        var generations: [Int64] = []
        generations.reserveCapacity(values.count)
        for value in values {
            switch value {
            case .null:
                generations.append(0)
            case .bulkString(let text):
                guard let number = integer(text) else { return nil }
                generations.append(number)
            default:
                return nil
            }
        }
        return generations
    }
}

/// Purges that could not reach Redis, shared by every loop's store, oldest first; and the purges applied lately,
/// to apply again on a new master after a failover.
///
/// Bounded: past `limit` waiting purges, they are replaced by one purge of everything, which covers them all;
/// past `limit` recent ones, the oldest are forgotten.
final class PurgeQueue: Sendable {
    private let requests = Mutex<[PurgeRequest]>([])
    private let recent = Mutex<[(request: PurgeRequest, at: NIODeadline)]>([])
    private let limit: Int
    /// How long an applied purge is kept to apply again. Redis replicates asynchronously: a purge the old master
    /// acknowledged may never have reached the replica that replaces it. The window covers the sentinels'
    /// `down-after-milliseconds` (30 s by default) and the failover after it, with room to spare.
    static let failoverWindow: TimeAmount = .seconds(120)

    init(limit: Int = 1000) {
        self.limit = limit
    }

    /// A purge reached Redis.
    func noteApplied(_ request: PurgeRequest) {
        let now = NIODeadline.now()
        recent.withLock { recent in
            recent.append((request, now))
            if recent.count > limit { recent.removeFirst(recent.count - limit) }
        }
    }

    /// The master changed: every purge applied within `failoverWindow` waits to be applied again, and lookups
    /// wait for that (as for purges made while Redis was away). Applying a purge twice only invalidates twice.
    func requeueRecent() {
        let since = NIODeadline.now() - Self.failoverWindow
        let again = recent.withLock { recent in
            recent.removeAll { $0.at < since }
            return recent.map(\.request)
        }
        for request in again { append(request) }
    }

    var isEmpty: Bool { requests.withLock { $0.isEmpty } }
    var count: Int { requests.withLock { $0.count } }
    var first: PurgeRequest? { requests.withLock { $0.first } }

    func append(_ request: PurgeRequest) {
        requests.withLock { queued in
            guard !queued.contains(request) else { return }
            if queued.count >= limit {
                let lifetime = queued.map(\.counterLifetime).max() ?? request.counterLifetime
                queued = [PurgeRequest(counters: [.everything], counterLifetime: lifetime)]
            } else {
                queued.append(request)
            }
        }
    }

    func remove(_ request: PurgeRequest) {
        requests.withLock { queued in
            if let index = queued.firstIndex(of: request) { queued.remove(at: index) }
        }
    }

    /// Replaces a queued request by what is left of it (nothing left: removes it), in its place.
    func replace(_ request: PurgeRequest, with rest: PurgeRequest) {
        requests.withLock { queued in
            guard let index = queued.firstIndex(of: request) else { return }
            if rest.counters.isEmpty {
                queued.remove(at: index)
            } else {
                queued[index] = rest
            }
        }
    }
}

/// Builds the Redis store, fetch locks and delivery claims of each event loop, on one link per loop (a connection,
/// or a cluster's connections), all stores sharing one queue of purges to replay (and, with sentinels, one monitor
/// naming the master; in a cluster, one topology mapping its slots).
public final class RedisStoreFactory: Sendable {
    private let settings: RedisConnectionSettings
    private let monitor: SentinelMonitor?
    private let topology: RedisClusterTopology?
    private let namespace: String
    private let queue = PurgeQueue()
    private let metrics: RedisMetrics
    private let logger: Logger
    /// Whether each loop's store holds large bodies (`LocalBodies`): not behind an in-process tier, which holds them.
    private let holdsBodies: Bool

    /// `monitor` names the master when `settings.sentinel` is set, `topology` maps the slots when
    /// `settings.cluster` is (each must be given then, and only then).
    public init(
        settings: RedisConnectionSettings, monitor: SentinelMonitor? = nil, topology: RedisClusterTopology? = nil, namespace: String,
        metrics: RedisMetrics = RedisMetrics(), holdsBodies: Bool = true, logger: Logger
    ) {
        precondition((settings.sentinel == nil) == (monitor == nil), "sentinel settings need a SentinelMonitor, and only they")
        precondition((settings.cluster == nil) == (topology == nil), "cluster settings need a RedisClusterTopology, and only they")
        self.settings = settings
        self.monitor = monitor
        self.topology = topology
        self.namespace = namespace
        self.metrics = metrics
        self.holdsBodies = holdsBodies
        self.logger = logger
        monitor?.beforeMoving { [queue] in queue.requeueRecent() }
        topology?.beforeNewMaster { [queue] in queue.requeueRecent() }
    }

    /// What one event loop uses, connecting in the background. Call on that loop.
    public func make(on eventLoop: any EventLoop) -> (store: RedisStore, fetchLocks: RedisFetchLocks, deliveryClaims: RedisDeliveryClaims) {
        eventLoop.preconditionInEventLoop()
        let link: any RedisLink = if let topology {
            RedisClusterConnection(eventLoop: eventLoop, settings: settings, topology: topology, metrics: metrics, logger: logger)
        } else {
            RedisConnection(eventLoop: eventLoop, settings: settings, monitor: monitor, metrics: metrics, logger: logger)
        }
        let keys = RedisKeys(namespace: namespace)
        let parts = (RedisStore(link: link, keys: keys, queue: queue, localBodies: holdsBodies ? RedisStore.heldBodies : 0), RedisFetchLocks(connection: link, keys: keys),
            RedisDeliveryClaims(connection: link, keys: keys))
        // Each time the link is back: purges made while it was away, then fetch locks it could not release.
        link.onReady = { [weak store = parts.0, weak locks = parts.1] in
            store?.replayQueuedPurges()
            locks?.releaseUnsent()
        }
        link.start()
        return parts
    }

    /// A store for `eventLoop` alone (tests). Call on that loop.
    public func makeStore(on eventLoop: any EventLoop) -> RedisStore {
        make(on: eventLoop).store
    }
}

extension RedisStore {
    /// Closes the connection and stops reconnecting (the fetch locks and claims on it too). Call on the store's loop.
    public func shutdown() {
        link.stop()
    }
}
