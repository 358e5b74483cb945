package email

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
)

// maxStartTLSLine bounds a line before TLS; maxStartTLSLines the untagged
// lines a server may send before it answers STARTTLS.
const (
	maxStartTLSLine  = 8 << 10
	maxStartTLSLines = 64
)

// replayedGreeting stands for the server's greeting, which go-imap waits
// for, on a connection upgraded with STARTTLS. It names no capabilities,
// so go-imap asks for them again over TLS, as it must.
var replayedGreeting = []byte("* OK TLS established\r\n")

// startTLSIMAP does the STARTTLS exchange itself, so that go-imap reads
// the decrypted stream only through the guard (go-imap's own STARTTLS
// upgrades below any wrapper it is given). Nothing the server sent before
// TLS is kept.
func startTLSIMAP(ctx context.Context, conn net.Conn, cfg *tls.Config) (*guardConn, error) {
	br := bufio.NewReaderSize(conn, 4096)
	greeting, err := readLine(br)
	if err != nil {
		return nil, fmt.Errorf("greeting: %w", err)
	}
	switch word := bytes.ToUpper(field(greeting, 1)); {
	case string(field(greeting, 0)) != "*":
		return nil, fmt.Errorf("greeting: not an untagged response: %q", clip(string(greeting)))
	case string(word) == "PREAUTH":
		return nil, errors.New("the server sent PREAUTH on an unencrypted connection")
	case string(word) != "OK":
		return nil, fmt.Errorf("greeting: %s", clip(string(greeting)))
	}
	if _, err := conn.Write([]byte("S1 STARTTLS\r\n")); err != nil {
		return nil, fmt.Errorf("STARTTLS: %w", err)
	}
	for i := 0; ; i++ {
		if i == maxStartTLSLines {
			return nil, errors.New("STARTTLS: no answer")
		}
		line, err := readLine(br)
		if err != nil {
			return nil, fmt.Errorf("STARTTLS: %w", err)
		}
		if string(field(line, 0)) != "S1" {
			continue // untagged data: nothing before TLS is trusted
		}
		if !bytes.EqualFold(field(line, 1), []byte("OK")) {
			return nil, fmt.Errorf("STARTTLS refused: %s", clip(string(line)))
		}
		break
	}
	if br.Buffered() > 0 {
		// Data after the answer would be read as if it came over TLS.
		return nil, errors.New("STARTTLS: the server sent data before the TLS handshake")
	}
	tc := tls.Client(conn, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		return nil, fmt.Errorf("STARTTLS: %w", err)
	}
	g := newGuardConn(tc)
	g.pending = bytes.Clone(replayedGreeting)
	return g, nil
}

// readLine reads one line of at most maxStartTLSLine bytes, without its
// line end.
func readLine(br *bufio.Reader) ([]byte, error) {
	var line []byte
	for {
		part, err := br.ReadSlice('\n')
		line = append(line, part...)
		if len(line) > maxStartTLSLine {
			return nil, fmt.Errorf("%w: a line longer than %d bytes before TLS", errIMAPLimit, maxStartTLSLine)
		}
		switch {
		case err == nil:
			return bytes.TrimRight(line, "\r\n"), nil
		case !errors.Is(err, bufio.ErrBufferFull):
			return nil, err
		}
	}
}

// field is the n-th space-separated word of a line, or nothing.
func field(line []byte, n int) []byte {
	f := bytes.Fields(line)
	if n < len(f) {
		return f[n]
	}
	return nil
}
