import Foundation
import Manifests
import Testing

/// Digests are written as sha256sum prints them: two lowercase hexadecimal digits a byte, as `String(format: "%02x")`
/// wrote them before (plan keys and seals saved earlier must read the same).
@Suite struct HexDigitsTests {
    @Test func everyByteIsTwoLowercaseDigitsAsFormatWroteThem() {
        let all = (0...255).map { UInt8($0) }
        #expect(all.hexDigits == all.map { String(format: "%02x", $0) }.joined())
        #expect([UInt8]().hexDigits.isEmpty)
        #expect([0x0a, 0xf0, 0x00].hexDigits == "0af000")
    }
}
