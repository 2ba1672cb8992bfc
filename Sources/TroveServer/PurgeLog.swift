internal import TroveRules
internal import Logging
internal import TroveCore

/// How purges are logged, whoever made them: one line per purge, with what it named and what became of it.
/// Writes purge all the time, so theirs are debug lines unless something went wrong; admin and webhook purges
/// are rare and deliberate, so they are info.
enum PurgeLog {
    static func write(_ outcome: PurgeOutcome, to logger: Logger) {
        var metadata: Logger.Metadata = [
            "purge.source": "\(outcome.source.rawValue)", "purge.tags": "\(outcome.purges.tags)",
            "purge.keys": "\(outcome.purges.keys)", "purge.routes": "\(outcome.purges.routes)",
            "purge.all": "\(outcome.purges.everything)",
            "purge.mode": "\(outcome.purges.soft == nil ? "hard" : "soft")",
        ]
        for (name, value) in outcome.context { metadata[name] = "\(value)" }
        switch outcome.result {
        case .applied:
            logger.log(level: outcome.source == .writeRule ? .debug : .info, "purged", metadata: metadata)
        case .queued(let error):
            metadata["store.error"] = "\(error)"
            logger.warning("purge queued until the store is back", metadata: metadata)
        case .refused(let reason):
            metadata["purge.refusal"] = "\(reason)"
            logger.error("purge refused", metadata: metadata)
        }
    }
}
