import Crypto
import Foundation

/// Push notifications: a JSON body signed with HMAC-SHA256 under the shared secret (`X-Hub-Signature-256:
/// sha256=<hex>`, as GitHub and Gitea send it, and as `stacklab hook notify` does), with a delivery id that is
/// accepted once.
public enum Webhooks {
    /// `sha256=<hex>` of `body` under `secret`.
    public static func signature(_ body: [UInt8], secret: String) -> String {
        let mac = HMAC<SHA256>.authenticationCode(for: body, using: SymmetricKey(data: Data(secret.utf8)))
        return "sha256=" + mac.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
    }

    /// Whether `header` is the signature of `body` (compared in constant time).
    public static func verify(_ body: [UInt8], header: String?, secret: String) -> Bool {
        guard let header, header.hasPrefix("sha256="), header.count == 71 else { return false }
        let expected = Array(signature(body, secret: secret).utf8), given = Array(header.utf8)
        var difference: UInt8 = 0
        for (a, b) in zip(expected, given) { difference |= a ^ b }
        return difference == 0 && expected.count == given.count
    }

    /// The branch a push (GitHub/Gitea `ref`) or a Gerrit ref-updated event (`refUpdate.refName`) is about, if any.
    public static func branch(of body: [UInt8]) -> String? {
        guard let object = try? JSONSerialization.jsonObject(with: Data(body)) as? [String: Any] else { return nil }
        let ref = (object["ref"] as? String) ?? ((object["refUpdate"] as? [String: Any])?["refName"] as? String)
        return ref.map { $0.hasPrefix("refs/heads/") ? String($0.dropFirst("refs/heads/".count)) : $0 }
    }
}
