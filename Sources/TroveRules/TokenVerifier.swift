public import TroveHTTP
internal import Crypto
internal import CryptoExtras
internal import Foundation

/// Checks the JSON Web Token a request carries in `Authorization` (a rules file's `jwt:` verifier) and gives its
/// claims to templates (`{jwt.sub}`), so that per-user entries and purges follow the user, not the spelling of a
/// header.
///
/// The signature is checked with swift-crypto (HMAC-SHA256, P-256 ECDSA, RSA PKCS#1 v1.5 with SHA-256); nothing
/// here is cryptography of its own. vapor/jwt-kit does the same checks, but only through an actor (`async`),
/// which the synchronous request planner cannot call without a task hop per request. The token's `alg` must be
/// the verifier's (an `alg: none` token, or an HS256 token signed with an RSA public key as secret, is refused),
/// `exp` must be present and not past (unless `require_expiry: false`), `nbf` not in the future, and `iss` and
/// `aud` what the verifier says when it says.
public final class TokenVerifier: Sendable {
    public enum Algorithm: String, Sendable, CaseIterable {
        case hs256 = "HS256"
        case rs256 = "RS256"
        case es256 = "ES256"
    }

    /// What `verify` made of a request.
    public enum Verification: Sendable, Equatable {
        /// No `Authorization` header: an anonymous request.
        case absent
        /// A valid token; its claims by name (nested objects' by dotted path), as text.
        case verified([String: String])
        /// A token that cannot be trusted, and why (for logs and `trove explain`; never its content).
        case refused(String)
    }

    enum Key: Sendable {
        case secret(SymmetricKey)
        case rsa(_RSA.Signing.PublicKey)
        case p256(P256.Signing.PublicKey)
        /// Read from an environment variable that is not set (`trove check` warns; `trove serve` refuses to
        /// start): every token is refused, never trusted.
        case unset
    }

    public let name: String
    public let algorithm: Algorithm
    let key: Key
    public let issuer: String?
    public let audience: String?
    /// Clock difference allowed when checking `exp` and `nbf`, in milliseconds.
    public let leeway: Int64
    public let requireExpiry: Bool
    /// Tokens already verified (checking each once, not once per request).
    let verified = VerifiedTokens()

    /// Tokens longer than this are refused unread (an `Authorization` header is bounded by the header limits too).
    static let maxTokenLength = 8192
    /// Claims kept per token: a token naming more is refused.
    static let maxClaims = 64

    init(name: String, algorithm: Algorithm, key: Key, issuer: String?, audience: String?, leeway: Int64, requireExpiry: Bool) {
        self.name = name
        self.algorithm = algorithm
        self.key = key
        self.issuer = issuer
        self.audience = audience
        self.leeway = leeway
        self.requireExpiry = requireExpiry
    }

    /// The key for `algorithm` from its text: the shared secret (HS256), or a PEM public key (RS256, ES256).
    static func key(_ text: String, for algorithm: Algorithm) throws(KeyProblem) -> Key {
        switch algorithm {
        case .hs256:
            guard text.utf8.count >= 32 else { throw KeyProblem("an HS256 secret must be at least 32 bytes (RFC 7518 §3.2)") }
            return .secret(SymmetricKey(data: Array(text.utf8)))
        case .rs256:
            guard let key = try? _RSA.Signing.PublicKey(pemRepresentation: text) else {
                throw KeyProblem("not an RSA public key in PEM (-----BEGIN PUBLIC KEY-----)")
            }
            guard key.keySizeInBits >= 2048 else { throw KeyProblem("an RSA key must have at least 2048 bits") }
            return .rsa(key)
        case .es256:
            guard let key = try? P256.Signing.PublicKey(pemRepresentation: text) else {
                throw KeyProblem("not a P-256 public key in PEM (-----BEGIN PUBLIC KEY-----)")
            }
            return .p256(key)
        }
    }

    struct KeyProblem: Error {
        let message: String
        init(_ message: String) { self.message = message }
    }

    /// Verifies the bearer token in these request headers at `now` (milliseconds since the epoch; nil when the
    /// time is not known, which refuses every token rather than trust one that may have expired).
    public func verify(_ headers: [Header], now: Int64?) -> Verification {
        let values = TemplateContext.headerValues("authorization", in: headers)
        guard let value = values.first else { return .absent }
        guard values.count == 1 else { return .refused("more than one Authorization header") }
        guard let token = Self.credentials(of: value, scheme: "bearer") else { return .refused("not a Bearer token") }
        guard let now else { return .refused("the time is not known") }
        return verify(token: token, now: now)
    }

    /// The credentials after an `Authorization` value's scheme, whatever its case (`Bearer x`, `bearer x`); nil for
    /// another scheme (or none when `scheme` is nil: then any).
    static func credentials(of value: String, scheme: String?) -> String? {
        let trimmed = value.trimmingWhitespace()
        guard let space = trimmed.firstIndex(where: { $0 == " " || $0 == "\t" }) else { return scheme == nil ? trimmed : nil }
        if let scheme, trimmed[..<space].lowercased() != scheme { return nil }
        return String(trimmed[space...]).trimmingWhitespace()
    }

    func verify(token: String, now: Int64) -> Verification {
        guard token.utf8.count <= Self.maxTokenLength else { return .refused("the token is too long") }
        let digest = SHA256.hash(data: Array(token.utf8))
        if let claims = verified.claims(for: digest, at: now / 1000) { return .verified(claims) }
        switch check(token: token, now: now) {
        case .verified(let claims, let validFrom, let validUntil):
            verified.remember(digest, VerifiedTokens.Verified(claims: claims, validFrom: validFrom, validUntil: validUntil))
            return .verified(claims)
        case .refused(let why):
            return .refused(why)
        }
    }

    private enum Checked {
        case verified([String: String], validFrom: Int64?, validUntil: Int64?)
        case refused(String)
    }

    /// Every check, in full.
    private func check(token: String, now: Int64) -> Checked {
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, let headerBytes = Self.base64URL(parts[0]), let payloadBytes = Self.base64URL(parts[1]),
            let signature = Self.base64URL(parts[2])
        else { return .refused("not a JSON Web Token (three base64url parts)") }
        guard let header = Self.object(headerBytes) else { return .refused("its header is not a JSON object") }
        guard case .string(algorithm.rawValue)? = header["alg"] else {
            return .refused("its alg is not \(algorithm.rawValue)")
        }
        guard header["crit"] == nil else { return .refused("it has critical header parameters Trove does not know") }
        let signed = Array(token.utf8.prefix(parts[0].utf8.count + 1 + parts[1].utf8.count))
        guard isValid(signature, for: signed) else { return .refused("its signature is not valid") }
        guard let payload = Self.object(payloadBytes) else { return .refused("its claims are not a JSON object") }
        let seconds = now / 1000
        let leewaySeconds = leeway / 1000
        var validUntil: Int64?
        var validFrom: Int64?
        if let exp = payload["exp"] {
            guard let expiry = Self.seconds(exp) else { return .refused("its exp is not a number") }
            validUntil = expiry.addingClamped(leewaySeconds)
            guard seconds < expiry.addingClamped(leewaySeconds) else { return .refused("it has expired") }
        } else if requireExpiry {
            return .refused("it has no exp")
        }
        if let nbf = payload["nbf"] {
            guard let notBefore = Self.seconds(nbf) else { return .refused("its nbf is not a number") }
            validFrom = notBefore.subtractingClamped(leewaySeconds)
            guard seconds >= notBefore.subtractingClamped(leewaySeconds) else { return .refused("it is not valid yet (nbf)") }
        }
        if let issuer {
            guard case .string(issuer)? = payload["iss"] else { return .refused("its iss is not \(issuer)") }
        }
        if let audience, !Self.audiences(in: payloadBytes).contains(audience) {
            return .refused("its aud does not name \(audience)")
        }
        var claims: [String: String] = [:]
        guard Self.flatten(payload, prefix: "", depth: 0, into: &claims) else { return .refused("it has more than \(Self.maxClaims) claims") }
        return .verified(claims, validFrom: validFrom, validUntil: validUntil)
    }

    private func isValid(_ signature: [UInt8], for signed: [UInt8]) -> Bool {
        switch key {
        case .secret(let secret):
            return HMAC<SHA256>.isValidAuthenticationCode(signature, authenticating: signed, using: secret)
        case .rsa(let publicKey):
            return publicKey.isValidSignature(_RSA.Signing.RSASignature(rawRepresentation: signature), for: SHA256.hash(data: signed),
                padding: .insecurePKCS1v1_5)
        case .p256(let publicKey):
            guard let ecdsa = try? P256.Signing.ECDSASignature(rawRepresentation: signature) else { return false }
            return publicKey.isValidSignature(ecdsa, for: SHA256.hash(data: signed))
        case .unset:
            return false
        }
    }

    /// Unpadded base64url (RFC 7515 §2); nil for anything else.
    static func base64URL(_ text: Substring) -> [UInt8]? {
        guard text.utf8.allSatisfy({ byte in
            (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte) || (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte)
                || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || byte == UInt8(ascii: "-") || byte == UInt8(ascii: "_")
        }), text.utf8.count % 4 != 1 else { return nil }
        var standard = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        standard += String(repeating: "=", count: (4 - standard.utf8.count % 4) % 4)
        return Data(base64Encoded: standard).map(Array.init)
    }

    private static func object(_ bytes: [UInt8]) -> [String: JSONValue]? {
        guard case .object(let object)? = try? JSONDecoder().decode(JSONValue.self, from: Data(bytes)) else { return nil }
        return object
    }

    /// The `aud` claim's audiences: one string, or an array of them (RFC 7519 §4.1.3).
    private static func audiences(in payload: [UInt8]) -> [String] {
        struct Audience: Decodable {
            let aud: [String]
            init(from decoder: any Decoder) throws {
                let container = try decoder.container(keyedBy: JSONValue.Name.self)
                let key = JSONValue.Name(stringValue: "aud")
                if let list = try? container.decode([String].self, forKey: key) {
                    aud = list
                } else {
                    aud = [try container.decode(String.self, forKey: key)]
                }
            }
        }
        return (try? JSONDecoder().decode(Audience.self, from: Data(payload)))?.aud ?? []
    }

    /// A NumericDate (RFC 7519 §2): whole seconds, fractions cut; nil when not a number.
    private static func seconds(_ value: JSONValue) -> Int64? {
        switch value {
        case .integer(let seconds): seconds
        case .number(let seconds) where seconds.isFinite: Int64(exactly: seconds.rounded(.towardZero)) ?? (seconds > 0 ? .max : .min)
        default: nil
        }
    }

    /// Strings, numbers and booleans by name, nested objects' by dotted path (`org.id`), up to `maxClaims`; false
    /// past that. Arrays are left out: a template reads one value.
    private static func flatten(_ object: [String: JSONValue], prefix: String, depth: Int, into claims: inout [String: String]) -> Bool {
        for (name, value) in object {
            let path = prefix + name
            switch value {
            case .string(let text): claims[path] = text
            case .bool(let flag): claims[path] = flag ? "true" : "false"
            case .integer(let whole): claims[path] = String(whole)
            case .number(let number): claims[path] = String(number)
            case .object(let nested) where depth < 3:
                guard flatten(nested, prefix: path + ".", depth: depth + 1, into: &claims) else { return false }
            default: continue
            }
            if claims.count > maxClaims { return false }
        }
        return true
    }
}
