import Digest
import Testing
@testable import Engine

@Suite struct RedactorTests {
    @Test func everyOccurrenceOfEverySecretIsReplaced() {
        let redactor = Redactor(secrets: ["K10abc::server:xyz", "pa55word"])
        #expect(redactor.redact("token K10abc::server:xyz and pa55word twice pa55word") == "token *** and *** twice ***")
    }

    @Test func longerSecretsWinOverTheirPrefixes() {
        let redactor = Redactor(secrets: ["abcd", "abcdefgh"])
        #expect(redactor.redact("x abcdefgh y") == "x *** y")
    }

    @Test func veryShortValuesAreNotTreatedAsSecrets() {
        #expect(Redactor(secrets: ["ab"]).redact("abc") == "abc")
    }

    @Test func sha256MatchesKnownVectors() {
        #expect(SHA256.hex("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(SHA256.hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(SHA256.hex(String(repeating: "a", count: 1000)).hasPrefix("41edece42d63e8d9"))
    }
}
