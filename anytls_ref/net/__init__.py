"""anytls_ref.net — sockets, TLS and threads: the only package that does I/O.

Threading model (every thread has an owner that stops and joins it):

* Server: one accept thread (Server); one thread per TLS connection, which does the handshake,
  the authentication and then runs the session's reader loop; per stream one thread that reads
  the target address, dials, and copies stream → target, plus one that copies target → stream.
* Client: one thread per local inbound connection (SOCKS5 / HTTP handshake, then stream →
  local socket) plus one that copies local socket → stream; one reader thread per session;
  one idle-cleanup thread stopped by an Event.
* A session has one write lock, so frames (and the several TLS records of one padded write)
  never interleave. A stream's receive side is a bounded buffer filled by the session reader;
  when it is full the reader waits, which pushes back on the peer through TCP (as Go's pipe).
* The reader's fatal error is kept on the session and handed to every stream blocked on it.
  Closing shuts the socket down, which wakes a thread blocked in recv; the socket itself is
  closed by the thread that owns it, under the write lock, so no fd is reused under a writer.
"""
