// Package control serves an engine over a unix socket and gives Go programs in other processes
// a client with the same calls as an in-process engine.Process.
//
// # Model
//
// One connection is one engine.Process (kernel terms: one process with its own fd table). The
// fds a client opens live in the daemon; they are plain integers on the wire and close when
// the client calls Close(fd), or all at once when the connection goes away (engine.Process.Exit,
// like process exit on Linux).
//
// # Who may connect (Policy)
//
// The server reads the caller's credentials with SO_PEERCRED (uid, gid) and SO_PEERGROUPS
// (supplementary groups) when a connection arrives. A caller is allowed when it is uid 0, the
// mount's owner or the daemon's own uid (Policy.OwnerUIDs: uid= of the mount, by default the uid that ran `bpffs-fuse mount`), or a member
// (primary or supplementary) of Policy.GroupID when one was given at mount time
// (`-o control_group=NAME|GID`). An allowed caller gets a Process with its uid, gid and groups,
// the capabilities it really holds (CapEff of /proc/PID/status), and CAP_BPF, CAP_SYS_ADMIN,
// CAP_PERFMON and CAP_NET_ADMIN on top: the daemon is its users' kernel, and the policy, not
// capabilities, is what keeps strangers out. File-permission overrides such as
// CAP_DAC_OVERRIDE are not granted, so pins it creates are owned by its uid and gid, and
// OBJ_GET checks file modes against them, as bpffs does. Everyone else gets the handshake
// reply with errno EPERM and the connection is closed. The socket file itself is created with
// mode 0660 (0666 when the mount allows other users) in a directory of mode 0755, so that
// the kernel lets the policy's users reach it; the policy check is the authority. The socket
// is owned by the mount's uid and the control group. Users other than the mounter also need
// the mount's allow_other to reach the mount itself, which is how the CLI finds the socket
// (the root's user.bpffs.control xattr).
//
// # Wire protocol, versions 1 and 2
//
// All integers are little-endian. Version 2 is version 1 plus OpVector.
//
// Handshake. The client sends 12 bytes: the magic "BPFFSCTL" and a u32 protocol version. The
// server answers 20 bytes: the magic, a u32 version, a u32 errno (0: accepted; EPERM: the
// caller is not allowed; EPROTONOSUPPORT: the client's version is not spoken) and a u32 giving
// num_possible_cpus of the engine (per-CPU values hold that many slots). On success the
// version is the client's, which the connection then speaks (a server speaks every version
// from 1 to its own); on EPROTONOSUPPORT it is the newest version the server speaks, so that
// a newer client can dial again with that one (Dial does). On a non-zero errno the server
// closes the connection.
//
// Frames. After the handshake both sides exchange frames:
//
//	u32 len     bytes after this field (8 + payload), at most MaxFrame
//	u32 id      request id chosen by the client; the response carries the same id
//	u16 op      the bpf(2) command number (enum bpf_cmd) or one of OpClose, OpDup
//	u16 flags   requests: FlagNoReply (1) or 0; responses: 0
//	payload     op-specific
//
// A request with FlagNoReply gets no response, whatever its outcome; clients use it for
// close(2) of descriptors they no longer need, where waiting would only add a round trip.
// Other flag bits are reserved and make the request fail with EINVAL.
//
// Requests on one connection run concurrently (up to MaxInFlight at a time); responses come
// back in completion order, matched by id. A response payload starts with a u32 errno (0 on
// success) and a string (the error text, empty on success), followed by the op's results.
// Batch ops return their results (count, out_batch, keys, values) also on error, as the
// kernel does.
//
// Field encodings inside payloads: u32 and u64 as is; bytes and strings as a u32 length and
// the data, where length 0xffffffff stands for a nil slice (a NULL pointer in bpf(2), as in
// MapGetNextKey's first-key request).
//
// Vectors (version 2). An OpVector request runs a sequence of requests in order, one after
// the other, and stops after the first that fails; a batch of element operations then costs
// one round trip instead of one each. Its payload is a u32 count and, per sub-request, a u32
// holding the op (low 16 bits) and flags (high 16 bits, as in a frame header) and the
// sub-request's payload as bytes (in the op's own payload format). The response payload is
// the usual status (0, unless the vector itself is malformed: then nothing ran), a u32 n of
// sub-requests that ran, and n times, as bytes, the response payload each would have had as a
// frame of its own. The last of them carries the failure, if any; the rest did not run. A
// server may also stop early without a failure once the response grows past MaxFrame/2; the
// client then sends the rest again. A vector inside a vector is refused with EINVAL. A
// sub-request with flag VecFlagPrevFD (0x8000) gets the descriptor the previous sub-request
// returned (OBJ_GET, MAP_GET_FD_BY_ID, MAP_CREATE, dup) in place of its leading fd field, so
// that opening a map and reading its info is one round trip (Client.ObjGetMapInfo). Client.
// Vector uses this for element operations (lookup, lookup-and-delete, update, delete), and
// runs them one request each on a version 1 connection.
//
// Errors in the stream. A frame whose len is below 8 or above MaxFrame makes the server send
// a response with id 0, op OpError and errno EMSGSIZE, then close the connection: the stream
// can no longer be trusted. A well-framed request whose payload does not decode gets errno
// EBADMSG; an unknown op gets EINVAL (as bpf(2) does for an unknown command); the connection
// stays usable in both cases. Nothing a client sends can crash the server; FuzzDecodeFrame and
// FuzzServe check this.
package control
