/// Vigil's version, the one place it is written: `vigil --version` and the server's
/// `GET /v2` (`"version"`) both read it.
package enum VigilVersion {
    package static let current = "0.1.0"
}
