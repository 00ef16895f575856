internal import Foundation
internal import VigilEngine
#if canImport(Glibc)
internal import Glibc
#endif
internal import CDispatch

/// The Unix socket's lock, group and mode, apart from the listener code.
extension VigilServer {
    /// Takes `<socket>.lock` (flock, held while the process lives) and refuses a path that
    /// exists and is not a socket, since Hummingbird removes the file at the path before binding.
    static func lockSocketPath(_ socket: String) throws -> Int32 {
        let lockPath = socket + ".lock"
        let fd = open(lockPath, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw VigilError(.io, "\(lockPath): cannot create the socket's lock file (\(String(cString: strerror(errno))))") }
        // 0600 whatever the umask, and also when the file was left by an older server.
        guard fchmod(fd, 0o600) == 0 else {
            let reason = String(cString: strerror(errno))
            close(fd)
            throw VigilError(.io, "\(lockPath): cannot set the lock file's mode to 0600 (\(reason))")
        }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            close(fd)
            throw VigilError(.io, "--socket \(socket): another vigil serve holds it (\(lockPath) is locked); stop that one first or pick another path")
        }
        // attributesOfItem reads the path itself (lstat), not what a symbolic link points to.
        if let type = (try? FileManager.default.attributesOfItem(atPath: socket))?[.type] as? FileAttributeType, type != .typeSocket {
            close(fd)
            throw VigilError(.io, "--socket \(socket): the path exists and is not a socket; refusing to replace it")
        }
        return fd
    }

    /// The group id named by `name` (a group name or a number), or a usage error.
    static func groupID(_ name: String) throws -> gid_t {
        if let n = UInt32(name) { return gid_t(n) }
        guard let g = getgrnam(name) else {
            throw VigilError(.usage, "--socket-group: no group named '\(Untrusted.quote(name))' on this machine")
        }
        return g.pointee.gr_gid
    }

    /// Sets the socket's group and mode right after bind (Hummingbird binds with the umask's mode).
    static func restrictSocket(_ path: String, mode: UInt32, group: String?) throws {
        if let group {
            guard chown(path, uid_t.max, try groupID(group)) == 0 else {
                throw VigilError(.io, "--socket \(path): cannot hand it to group '\(Untrusted.quote(group))' (\(String(cString: strerror(errno))))")
            }
        }
        guard chmod(path, mode_t(mode)) == 0 else {
            throw VigilError(.io, "--socket \(path): cannot set mode \(String(mode, radix: 8)) (\(String(cString: strerror(errno))))")
        }
    }
}
