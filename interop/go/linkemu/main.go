// Command linkemu is the bench's wide-area link emulator: a TCP relay that delays, paces and
// windows what passes through it. interop/linkemu.py says what it emulates, how to use it and
// why it is written in Go; this file only does it.
//
//	linkemu -to HOST:PORT [-listen HOST:PORT] [-rtt MS] [-rate MBIT] [-window BYTES] [-handshake]
//
// It prints "listening on HOST:PORT" once it accepts, and ends on SIGTERM or SIGINT.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"
	"unsafe"
)

const (
	chunkSize = 256 << 10 // bytes per read
	// SO_RCVBUF / SO_SNDBUF with a window (Linux doubles it): they hold bytes beyond the window
	socketBuffer = 64 << 10
	pacingSlice  = time.Millisecond // with a rate cap, a read is handed on in slices this long
	minSlice     = 1500
	// queued reads or slices per direction at most: without a window the relay's only limit
	maxQueued = 1024
)

type link struct {
	delay     time.Duration // one way
	rate      float64       // bytes/s; 0: no cap
	window    int           // bytes in flight; 0: no window
	handshake bool          // hold a connection's first client bytes until one RTT after accept
}

type endKind int

const (
	data endKind = iota
	fin
	reset
)

type item struct {
	due  time.Time
	kind endKind
	data []byte
	buf  *[]byte // goes back to the pool once written (set on a read's last piece)
}

type ack struct {
	at time.Time
	n  int
}

var buffers = sync.Pool{New: func() any { b := make([]byte, chunkSize); return &b }}

// direction is one way of one connection: readLoop reads src into queue, sendLoop writes each
// item to dst when it is due.
type direction struct {
	conn      *connection
	src, dst  *net.TCPConn
	link      *link
	holdUntil time.Time
	queue     chan item
	rawSrc    syscall.RawConn

	mu         sync.Mutex
	linkFree   time.Time // with a rate cap: when the link has serialised what it holds
	inFlight   int
	acks       []ack
	acked      chan struct{} // a new acknowledgement was recorded
	senderDone bool
}

func newDirection(c *connection, src, dst *net.TCPConn, hold time.Time) *direction {
	rawSrc, _ := src.SyscallConn()
	return &direction{conn: c, src: src, dst: dst, link: c.link, holdUntil: hold, rawSrc: rawSrc,
		queue: make(chan item, maxQueued), acked: make(chan struct{}, 1)}
}

func (d *direction) readLoop() {
	for {
		size, opened := d.waitForRoom()
		if size == 0 {
			return
		}
		// Data already waiting when the window opened would have left a real sender then, not
		// when this goroutine got round to reading it: its in-flight time starts at the opening.
		// (Waiting is seen on waking, so a byte that came in meanwhile may be dated up to one
		// wake-up early; it only happens while the window is full, when data is always queued.)
		waiting := !opened.IsZero() && d.available() > 0
		bufp := buffers.Get().(*[]byte)
		n, err := d.src.Read((*bufp)[:size])
		arrival := time.Now()
		if waiting {
			arrival = opened
		}
		if n > 0 {
			d.push((*bufp)[:n], bufp, arrival)
		} else {
			buffers.Put(bufp)
		}
		if errors.Is(err, io.EOF) {
			d.pushEnd(fin, arrival)
			return
		} else if err != nil { // reset by the peer, or the connection is being aborted
			d.pushEnd(reset, arrival)
			return
		}
	}
}

// available is how many bytes src has received that are not read yet (FIONREAD).
func (d *direction) available() int {
	var n int32
	d.rawSrc.Control(func(fd uintptr) {
		syscall.Syscall(syscall.SYS_IOCTL, fd, syscall.TIOCINQ, uintptr(unsafe.Pointer(&n)))
	})
	return int(n)
}

// waitForRoom returns how many bytes the next read may take (0 once the connection has ended)
// and, if it had to wait for the window, when the acknowledgement that made room was due.
func (d *direction) waitForRoom() (int, time.Time) {
	if d.link.window == 0 {
		return chunkSize, time.Time{}
	}
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	var opened time.Time
	for {
		d.mu.Lock()
		now := time.Now()
		for len(d.acks) > 0 && !d.acks[0].at.After(now) {
			d.inFlight -= d.acks[0].n
			opened = d.acks[0].at
			d.acks = d.acks[1:]
		}
		room := d.link.window - d.inFlight
		var next time.Duration = -1
		if len(d.acks) > 0 {
			next = d.acks[0].at.Sub(now)
		}
		d.mu.Unlock()
		if room > 0 {
			return min(chunkSize, room), opened
		}
		var expired <-chan time.Time
		if next >= 0 {
			if timer == nil {
				timer = time.NewTimer(next)
			} else {
				timer.Reset(next)
			}
			expired = timer.C
		}
		select {
		case <-expired:
		case <-d.acked:
		case <-d.conn.stop:
			return 0, time.Time{}
		}
	}
}

func (d *direction) put(it item) {
	select {
	case d.queue <- it:
	case <-d.conn.stop:
	}
}

func (d *direction) push(b []byte, bufp *[]byte, arrival time.Time) {
	if arrival.Before(d.holdUntil) {
		arrival = d.holdUntil
	}
	if d.link.rate == 0 {
		if d.link.window != 0 {
			d.mu.Lock()
			d.inFlight += len(b)
			d.mu.Unlock()
		}
		d.put(item{due: arrival.Add(d.link.delay), data: b, buf: bufp})
		return
	}
	pieceSize := max(minSlice, int(d.link.rate*pacingSlice.Seconds()))
	var pieces []item
	d.mu.Lock()
	d.inFlight += len(b)
	serialised := arrival
	if d.linkFree.After(serialised) {
		serialised = d.linkFree
	}
	for off := 0; off < len(b); off += pieceSize {
		piece := b[off:min(off+pieceSize, len(b))]
		serialised = serialised.Add(time.Duration(float64(len(piece)) / d.link.rate * 1e9))
		pieces = append(pieces, item{due: serialised.Add(d.link.delay), data: piece})
	}
	d.linkFree = serialised
	d.mu.Unlock()
	pieces[len(pieces)-1].buf = bufp
	for _, it := range pieces {
		d.put(it)
	}
}

// pushEnd queues a FIN or a reset behind the data; false if the sender has already finished.
func (d *direction) pushEnd(kind endKind, arrival time.Time) bool {
	d.mu.Lock()
	done := d.senderDone
	due := arrival
	for _, t := range []time.Time{d.holdUntil, d.linkFree} {
		if t.After(due) {
			due = t
		}
	}
	d.mu.Unlock()
	if done {
		return false
	}
	d.put(item{due: due.Add(d.link.delay), kind: kind})
	return true
}

func (d *direction) sendLoop() {
	defer func() {
		d.mu.Lock()
		d.senderDone = true
		d.mu.Unlock()
	}()
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		var it item
		select {
		case it = <-d.queue:
		case <-d.conn.stop:
			return
		}
		if wait := time.Until(it.due); wait > 0 {
			timer.Reset(wait)
			select {
			case <-timer.C:
			case <-d.conn.stop:
				return
			}
		}
		switch it.kind {
		case fin:
			d.dst.CloseWrite()
			return
		case reset:
			d.conn.abort(d.dst)
			return
		}
		started := time.Now()
		_, err := d.dst.Write(it.data)
		blocked := time.Since(started)
		if it.buf != nil {
			buffers.Put(it.buf)
		}
		if err != nil { // dst has gone: the side that sent this learns it by a reset
			d.conn.refused(d)
			return
		}
		if d.link.window != 0 {
			d.mu.Lock()
			// acknowledged one delay after the receiver took it: late if the write had to wait
			// for the receiver, but not for this goroutine's own wake-up after the due time
			d.acks = append(d.acks, ack{it.due.Add(blocked + d.link.delay), len(it.data)})
			d.mu.Unlock()
			select {
			case d.acked <- struct{}{}:
			default:
			}
		}
	}
}

// connection is one client connection and its upstream connection: two directions.
type connection struct {
	client, upstream  *net.TCPConn
	link              *link
	forward, backward *direction
	stop              chan struct{}
	abortOnce         sync.Once
}

// refused: d.dst refused data, so d.src gets a reset one delay later (behind what the opposite
// direction still carries), or at once if that direction has ended.
func (c *connection) refused(d *direction) {
	opposite := c.forward
	if d == c.forward {
		opposite = c.backward
	}
	if !opposite.pushEnd(reset, time.Now()) {
		c.abort(d.src)
	}
}

// abort ends the connection now; resetSock (if any) is reset instead of closed.
func (c *connection) abort(resetSock *net.TCPConn) {
	c.abortOnce.Do(func() {
		if resetSock != nil {
			resetSock.SetLinger(0)
		}
		close(c.stop)
		c.client.Close()
		c.upstream.Close()
	})
}

func (c *connection) run() {
	var wg sync.WaitGroup
	for _, loop := range []func(){c.forward.readLoop, c.forward.sendLoop,
		c.backward.readLoop, c.backward.sendLoop} {
		wg.Add(1)
		go func() { defer wg.Done(); loop() }()
	}
	wg.Wait()
	c.client.Close()
	c.upstream.Close()
}

func tune(fd uintptr, l *link) {
	if l.window != 0 {
		syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, socketBuffer)
		syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_SNDBUF, socketBuffer)
	}
}

func control(l *link) func(string, string, syscall.RawConn) error {
	return func(_, _ string, rc syscall.RawConn) error {
		return rc.Control(func(fd uintptr) { tune(fd, l) })
	}
}

type emulator struct {
	link     *link
	upstream string
	dialer   net.Dialer
	mu       sync.Mutex
	conns    map[*connection]struct{}
	wg       sync.WaitGroup
}

func (e *emulator) handle(client *net.TCPConn) {
	defer e.wg.Done()
	accepted := time.Now()
	client.SetNoDelay(true)
	up, err := e.dialer.Dial("tcp", e.upstream)
	if err != nil {
		client.SetLinger(0) // as a refused connection looks to the client: a reset
		client.Close()
		return
	}
	upstream := up.(*net.TCPConn)
	upstream.SetNoDelay(true)
	c := &connection{client: client, upstream: upstream, link: e.link, stop: make(chan struct{})}
	var hold time.Time
	if e.link.handshake {
		hold = accepted.Add(2 * e.link.delay)
	}
	c.forward = newDirection(c, client, upstream, hold)
	c.backward = newDirection(c, upstream, client, time.Time{})
	e.mu.Lock()
	if e.conns == nil {
		e.mu.Unlock()
		c.abort(nil)
		return
	}
	e.conns[c] = struct{}{}
	e.mu.Unlock()
	c.run()
	e.mu.Lock()
	delete(e.conns, c)
	e.mu.Unlock()
}

func usage(msg string) {
	fmt.Fprintf(os.Stderr, "linkemu: %s\n", msg)
	os.Exit(2)
}

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "HOST:PORT")
	to := flag.String("to", "", "HOST:PORT of the server behind the link")
	rtt := flag.Float64("rtt", 0, "round trip in ms (half each way)")
	rate := flag.Float64("rate", 0, "bandwidth cap in Mbit/s, each direction (0: none)")
	window := flag.Int("window", 0, "bytes in flight per direction (0: no window)")
	handshake := flag.Bool("handshake", false, "charge one RTT for each new connection's TCP handshake")
	flag.CommandLine.SetOutput(io.Discard)
	if err := flag.CommandLine.Parse(os.Args[1:]); err != nil {
		usage(err.Error())
	}
	if *to == "" || *rtt < 0 || *rate < 0 || *window < 0 || flag.NArg() > 0 {
		usage("need -to HOST:PORT; -rtt, -rate and -window must be >= 0")
	}
	l := &link{delay: time.Duration(*rtt / 2 * float64(time.Millisecond)), rate: *rate * 1e6 / 8,
		window: *window, handshake: *handshake}
	e := &emulator{link: l, upstream: *to, conns: map[*connection]struct{}{},
		dialer: net.Dialer{Timeout: 10 * time.Second, Control: control(l)}}
	lc := net.ListenConfig{Control: control(l)} // accepted sockets inherit the small buffers
	ln, err := lc.Listen(context.Background(), "tcp", *listen)
	if err != nil {
		usage(err.Error())
	}
	fmt.Printf("listening on %s\n", ln.Addr())
	go func() {
		signals := make(chan os.Signal, 1)
		signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)
		<-signals
		ln.Close()
	}()
	for {
		conn, err := ln.Accept()
		if err != nil {
			break
		}
		e.wg.Add(1)
		go e.handle(conn.(*net.TCPConn))
	}
	e.mu.Lock()
	conns := e.conns
	e.conns = nil
	e.mu.Unlock()
	for c := range conns {
		c.abort(nil)
	}
	e.wg.Wait()
}
