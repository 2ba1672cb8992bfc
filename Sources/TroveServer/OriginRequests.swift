internal import TroveHTTP
internal import NIOCore
internal import TroveCore
internal import TroveRules

/// Builds the request Trove sends to an origin for a client request.
enum OriginRequests {
    /// Nil when the plan names no origin or target (a rejected request).
    static func make(
        plan: RequestPlan, fetch: ReadThroughStateMachine.Fetch, headers: [Header], clientAddress: String?, body: ByteBuffer?,
        forwardedHost: String?, limits: Limits, budget: ByteBudget
    ) -> OriginRequest<ByteBuffer>? {
        guard let origin = plan.origin, let target = plan.target else { return nil }
        var request = OriginRequest(
            origin: origin.name, method: fetch.method, url: origin.url + target.forwardTarget,
            headers: HeaderPolicy.originRequestHeaders(client: headers, clientAddress: clientAddress, origin: origin,
                forStorage: fetch.forStorage, forwardedHost: forwardedHost) + fetch.validators,
            body: fetch.sendsBody ? body : nil, connectTimeout: origin.connectTimeout, timeout: origin.timeout,
            maxResponseBytes: limits.maxResponseBody)
        request.budget = budget
        request.budgetCapacity = limits.responseBodyBudget
        return request
    }
}
