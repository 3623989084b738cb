"""anytls_ref.net — sockets, TLS and threads: the only package that does I/O.

Threading model (every thread has an owner that stops and joins it):

* Server: one accept thread (Server); one thread per TLS connection, which does the handshake,
  the authentication and then runs the session's reader loop (it also writes each stream's
  data straight into that stream's target socket); per stream one thread that reads the
  target address, dials, answers cmdSYNACK and copies target → stream. Connection and stream
  threads come from ``workers.Workers``, which hands a finished thread the next task.
* Client: one thread per local inbound connection (SOCKS5 / HTTP handshake, then local socket
  → stream), also from Workers; one reader thread per session (writes each stream's data
  straight into its local socket); one idle-cleanup thread stopped by an Event; with
  ``--heartbeat`` a heartbeat thread, and a cmdSYNACK watchdog thread for the streams handed
  out before their answer (the default; not with ``--wait-synack``).
* A session has one write lock, so frames (and the several TLS records of one padded write)
  never interleave. Until a stream's socket is attached, its receive side is a bounded buffer
  filled by the session reader; when it is full, or the attached socket is, the reader waits,
  which pushes back on the peer through TCP (as Go's pipe).
* The reader's fatal error is kept on the session and handed to every stream blocked on it.
  Closing shuts the socket down, which wakes a thread blocked in recv; the socket itself is
  closed by the thread that owns it, under the write lock, so no fd is reused under a writer.
"""
