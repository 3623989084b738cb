"""The interop suite: real anytls peers (peers.py), the matrix (matrix.py), targets."""
