internal import Foundation
internal import Crypto
internal import CryptoExtras

/// Signs JSON Web Tokens for tests, with swift-crypto: what an identity provider would issue.
public enum TestTokens {
    /// A secret long enough for HS256 (RFC 7518 §3.2).
    public static let secret = "trove-test-secret-0123456789abcdef-0123456789"

    /// An HS256 token with these claims (`alg` and `typ` in the header unless `header` says otherwise).
    public static func hs256(_ claims: [String: Any], secret: String = secret, header: [String: Any] = ["alg": "HS256", "typ": "JWT"]) -> String {
        let input = signingInput(header: header, claims: claims)
        let mac = HMAC<SHA256>.authenticationCode(for: Array(input.utf8), using: SymmetricKey(data: Array(secret.utf8)))
        return input + "." + base64URL(Array(mac))
    }

    /// An HS256 token whose claims are this JSON text, as written (for JSON no dictionary makes).
    public static func hs256(rawClaims: String, secret: String = secret) -> String {
        let input = base64URL(json(["alg": "HS256", "typ": "JWT"])) + "." + base64URL(Array(rawClaims.utf8))
        let mac = HMAC<SHA256>.authenticationCode(for: Array(input.utf8), using: SymmetricKey(data: Array(secret.utf8)))
        return input + "." + base64URL(Array(mac))
    }

    /// A P-256 key pair: sign with it, verify with `publicKeyPEM`.
    public struct ES256Key: Sendable {
        let key = P256.Signing.PrivateKey()
        public init() {}
        public var publicKeyPEM: String { key.publicKey.pemRepresentation }

        public func sign(_ claims: [String: Any]) -> String {
            let input = TestTokens.signingInput(header: ["alg": "ES256", "typ": "JWT"], claims: claims)
            let signature = try! key.signature(for: Array(input.utf8))
            return input + "." + TestTokens.base64URL(Array(signature.rawRepresentation))
        }
    }

    /// A 2048-bit RSA key pair.
    public struct RS256Key: Sendable {
        let key = try! _RSA.Signing.PrivateKey(keySize: .bits2048)
        public init() {}
        public var publicKeyPEM: String { key.publicKey.pemRepresentation }

        public func sign(_ claims: [String: Any]) -> String {
            let input = TestTokens.signingInput(header: ["alg": "RS256", "typ": "JWT"], claims: claims)
            let signature = try! key.signature(for: Array(input.utf8), padding: .insecurePKCS1v1_5)
            return input + "." + TestTokens.base64URL(Array(signature.rawRepresentation))
        }
    }

    static func signingInput(header: [String: Any], claims: [String: Any]) -> String {
        base64URL(json(header)) + "." + base64URL(json(claims))
    }

    static func json(_ object: [String: Any]) -> [UInt8] {
        Array(try! JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]))
    }

    public static func base64URL(_ bytes: [UInt8]) -> String {
        Data(bytes).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }
}
