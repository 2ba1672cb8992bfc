internal import TroveHTTP
internal import Foundation
internal import Yams

/// `jwt:`: named verifiers of the JSON Web Tokens requests carry, which routes name (`jwt: NAME`) to read the
/// token's claims in their templates (`{jwt.sub}`).
extension RulesLoader {
    static let tokenVerifierKeys = ["algorithm", "secret", "key", "key_file", "issuer", "audience", "leeway", "require_expiry"]

    /// `jwt:`; the verifiers that could be read, by name (the errors are reported).
    static func readTokenVerifiers(_ node: Node?, reader: inout RulesReader) -> [String: TokenVerifier] {
        guard let node else { return [:] }
        guard let mapping = node.mapping else {
            reader.error("expected a mapping of verifier names to how they check tokens, e.g. jwt: {shop-tokens: {algorithm: HS256, "
                + "secret: {env: JWT_SECRET}}}; found \(reader.describe(node))", at: node, field: "jwt")
            return [:]
        }
        var verifiers: [String: TokenVerifier] = [:]
        for (key, value) in mapping {
            guard let name = key.scalar?.string, isValidName(name) else {
                reader.error("'\(key.scalar?.string ?? reader.describe(key))' is not a verifier name; use letters, digits, '-', '_' or '.'",
                    at: key, field: "jwt")
                continue
            }
            if let verifier = readTokenVerifier(value, name: name, reader: &reader) { verifiers[name] = verifier }
        }
        return verifiers
    }

    private static func readTokenVerifier(_ node: Node, name: String, reader: inout RulesReader) -> TokenVerifier? {
        let base = "jwt.\(name)"
        guard let fields = reader.mapping(node, path: base, allowed: tokenVerifierKeys, hints: [
            "alg": "write algorithm: HS256, RS256 or ES256", "public_key": "write key_file: PATH (a PEM file) or key: {env: NAME}",
            "aud": "write audience: NAME", "iss": "write issuer: URL",
        ]) else { return nil }
        let names = TokenVerifier.Algorithm.allCases.map(\.rawValue).joined(separator: ", ")
        guard let algorithmNode = fields["algorithm"] else {
            reader.error("'algorithm' is missing; write algorithm: \(names) (the one the tokens are signed with)", at: node, field: base)
            return nil
        }
        guard let text = reader.string(algorithmNode, field: "\(base).algorithm", example: "HS256") else { return nil }
        guard let algorithm = TokenVerifier.Algorithm(rawValue: text.uppercased()) else {
            reader.error("'\(text)' is not an algorithm Trove verifies; write one of \(names)", at: algorithmNode, field: "\(base).algorithm")
            return nil
        }
        // The key: HS256's shared secret from the environment; RS256's and ES256's public key from a PEM file or the
        // environment.
        var keyText: String?
        var keyNode: Node = node
        var keyField = base
        switch algorithm {
        case .hs256:
            for other in ["key", "key_file"] where fields[other] != nil {
                reader.error("HS256 checks tokens with a shared secret: write secret: {env: NAME}, not \(other)", at: fields[other],
                    field: "\(base).\(other)")
                return nil
            }
            guard let secretNode = fields["secret"] else {
                reader.error("'secret' is missing; HS256 tokens are checked with the secret they were signed with: secret: {env: JWT_SECRET}",
                    at: node, field: base)
                return nil
            }
            (keyNode, keyField) = (secretNode, "\(base).secret")
            guard let secret = reader.configString(secretNode, field: keyField, secret: true, suggestedVariable: "JWT_SECRET") else { return nil }
            keyText = secret.value  // unset: reported; `trove serve` refuses to start
        case .rs256, .es256:
            if fields["secret"] != nil {
                reader.error("\(algorithm.rawValue) checks tokens with a public key: write key_file: PATH (PEM) or key: {env: NAME}, not secret",
                    at: fields["secret"], field: "\(base).secret")
                return nil
            }
            if let fileNode = fields["key_file"], fields["key"] != nil {
                reader.error("give key_file or key, not both", at: fileNode, field: "\(base).key_file")
                return nil
            } else if let fileNode = fields["key_file"] {
                (keyNode, keyField) = (fileNode, "\(base).key_file")
                guard let path = reader.string(fileNode, field: keyField, example: "jwt-public.pem") else { return nil }
                let resolved = path.hasPrefix("/") ? path
                    : URL(fileURLWithPath: reader.file).deletingLastPathComponent().appendingPathComponent(path).path
                guard let contents = try? String(contentsOfFile: resolved, encoding: .utf8) else {
                    reader.error("cannot read '\(resolved)' (a path is relative to the rules file's folder)", at: fileNode, field: keyField)
                    return nil
                }
                keyText = contents
            } else if let envNode = fields["key"] {
                (keyNode, keyField) = (envNode, "\(base).key")
                guard let key = reader.configString(envNode, field: keyField, secret: false, suggestedVariable: "JWT_PUBLIC_KEY") else { return nil }
                keyText = key.value
            } else {
                reader.error("the public key is missing; write key_file: PATH (a PEM file) or key: {env: NAME}", at: node, field: base)
                return nil
            }
        }
        let key: TokenVerifier.Key
        do {
            key = try keyText.map { text throws(TokenVerifier.KeyProblem) in try TokenVerifier.key(text, for: algorithm) } ?? .unset
        } catch {
            reader.error(error.message, at: keyNode, field: keyField)
            return nil
        }
        var issuer: String?
        if let issuerNode = fields["issuer"] { issuer = reader.string(issuerNode, field: "\(base).issuer", example: "https://auth.example.com/") }
        var audience: String?
        if let audienceNode = fields["audience"] { audience = reader.string(audienceNode, field: "\(base).audience", example: "my-api") }
        var leeway = Duration.seconds(30)
        if let leewayNode = fields["leeway"],
            let parsed = reader.duration(leewayNode, field: "\(base).leeway", allowZero: true, maximum: .seconds(300))
        {
            leeway = parsed
        }
        var requireExpiry = true
        if let requireNode = fields["require_expiry"], let value = reader.bool(requireNode, field: "\(base).require_expiry") {
            requireExpiry = value
            if !value {
                reader.warning("tokens without exp are accepted for ever: a leaked token selects its user's entries until the secret "
                    + "changes", at: requireNode, field: "\(base).require_expiry")
            }
        }
        return TokenVerifier(name: name, algorithm: algorithm, key: key, issuer: issuer, audience: audience,
            leeway: leeway.milliseconds, requireExpiry: requireExpiry)
    }
}
