package email

import (
	"bytes"
	"errors"
	"strconv"
	"strings"
	"testing"
)

// scanAll runs the lexer over s in one piece and byte by byte, and checks
// that both agree.
func scanAll(t testing.TB, s string) error {
	t.Helper()
	var whole, bytewise imapLexer
	err := whole.scan([]byte(s))
	var err2 error
	for i := 0; i < len(s) && err2 == nil; i++ {
		err2 = bytewise.scan([]byte{s[i]})
	}
	if (err == nil) != (err2 == nil) {
		t.Fatalf("in one piece: %v; byte by byte: %v (input %.200q)", err, err2, s)
	}
	if err == nil && whole != bytewise {
		t.Fatalf("states differ: %+v and %+v (input %.200q)", whole, bytewise, s)
	}
	return err
}

func nested(n int) string {
	return strings.Repeat("(", n) + `"text" "plain" NIL NIL NIL "7bit" 1 1` + strings.Repeat(")", n)
}

func TestIMAPLexerAcceptsRealResponses(t *testing.T) {
	deep := maxIMAPDepth - 2 // FETCH's own list and BODYSTRUCTURE's part
	for _, s := range []string{
		"* OK [CAPABILITY IMAP4rev1 IDLE LITERAL+] Dovecot ready.\r\n",
		"* OK [PERMANENTFLAGS (\\Answered \\Seen \\*)] ok\r\n",
		"+ idling\r\n",
		"* 3 EXISTS\r\nA1 OK [READ-ONLY] done\r\n",
		"* SEARCH 1 2 3 4\r\n",
		"* 1 FETCH (UID 7 BODYSTRUCTURE " + nested(deep) + ")\r\n",
		// Parentheses in quoted strings and literals do not count.
		`* 1 FETCH (ENVELOPE (NIL "` + strings.Repeat("(", 500) + `\" \\" NIL NIL))` + "\r\n",
		"* 1 FETCH (BODY[TEXT]<0> {600}\r\n" + strings.Repeat("(", 600) + " UID 1)\r\n",
		"* 1 FETCH (BODY[TEXT]<0> {600+}\r\n" + strings.Repeat("(", 600) + ")\r\n",
		"* 1 FETCH (BODY[TEXT] {3} \r\n(((" + ")\r\n",
		"* 1 FETCH (BODY[TEXT] {3}\n(((" + ")\r\n",
		"* 1 FETCH (BINARY[1] ~{3}\r\n(((" + ")\r\n",
		// A literal's size at the bound.
		"* 1 FETCH (BODY[] {" + strconv.Itoa(maxIMAPLiteral) + "}\r\n" + strings.Repeat("a", maxIMAPLiteral) + ")\r\n",
		// Text of a status response is not structure; a code may span lines.
		"* OK " + strings.Repeat("(", 1000) + "\r\n",
		"A2 NO [ALERT " + strings.Repeat("(", 300) + "\r\n" + strings.Repeat("(", 300) + "] no\r\n",
		"* 5 BYE {99999999999}\r\n",
		"A3 FOO {99999999999}\r\n",
		// Not literals: go-imap reads them as nothing of the kind.
		"* LIST () \"/\" {x}\r\n",
		// Many responses, each within the bounds.
		strings.Repeat("* 1 FETCH (BODYSTRUCTURE "+nested(deep)+")\r\n", 50),
	} {
		if err := scanAll(t, s); err != nil {
			t.Errorf("%v on %.100q", err, s)
		}
	}
}

func TestIMAPLexerRefuses(t *testing.T) {
	for name, s := range map[string]string{
		"nesting":                             "* 1 FETCH (UID 1 BODYSTRUCTURE " + strings.Repeat("(", maxIMAPDepth) + "\r\n",
		"nesting after a literal":             "* 1 FETCH (BODY[] {2}\r\n))" + strings.Repeat("(", maxIMAPDepth+1),
		"nesting after a quoted string":       `* 1 FETCH (ENVELOPE ("a\"b" ` + strings.Repeat("(", maxIMAPDepth) + "\r\n",
		"nesting in the greeting's successor": "* OK hi\r\n* 1 FETCH " + strings.Repeat("(", maxIMAPDepth+1),
		"literal":                             "* 1 FETCH (BODY[] {10737418240}\r\n",
		"literal+":                            "* 1 FETCH (BODY[] {" + strconv.Itoa(maxIMAPLiteral+1) + "+}\r\n",
		"huge number":                         "* 1 FETCH (BODY[] {99999999999999999999999999999}\r\n",
		"line":                                "* 1 FETCH (X " + strings.Repeat("a", maxIMAPLine),
		"text line":                           "* OK " + strings.Repeat("a", maxIMAPLine),
		"quoted over lines":                   `* 1 FETCH (ENVELOPE ("` + strings.Repeat("a\r\n", maxIMAPLine/3+1),
		"response":                            "* 1 FETCH (" + strings.Repeat("BODY[] {1000000}\r\n"+strings.Repeat("a", 1000000)+" ", 9),
		"untagged":                            strings.Repeat("* SEARCH "+strings.Repeat("1 ", 500000)+"\r\n", 40),
	} {
		err := scanAll(t, s)
		if !errors.Is(err, errIMAPLimit) {
			t.Errorf("%s: got %v, want a broken bound", name, err)
		}
	}
}

// TestIMAPLexerTaggedResetsUntagged: a tagged response ends a command, so
// bytes before it do not count against the next one.
func TestIMAPLexerTaggedResetsUntagged(t *testing.T) {
	var l imapLexer
	chunk := "* SEARCH " + strings.Repeat("1 ", 500000) + "\r\n"
	for i := range 200 {
		if err := l.scan([]byte(chunk)); err != nil {
			t.Fatalf("chunk %d: %v", i, err)
		}
		if i%20 == 19 {
			if err := l.scan([]byte("A" + strconv.Itoa(i) + " OK done\r\n")); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// FuzzIMAPLexer: any input, cut anywhere, gives the same verdict; the
// lexer never lets nesting or a response grow past its bounds.
func FuzzIMAPLexer(f *testing.F) {
	for _, s := range []string{
		"* OK [CAPABILITY IMAP4rev1] ready\r\n",
		"* 1 FETCH (UID 1 BODYSTRUCTURE " + nested(10) + ")\r\n",
		`* 1 FETCH (ENVELOPE (NIL "a \" ( b" NIL))` + "\r\n",
		"* 1 FETCH (BODY[] {5}\r\n((((()\r\n",
		"* 1 FETCH (BODY[] {5+}\r\n(((((\r\n",
		"* 1 FETCH (BODY[] {5} \n(((((\r\n",
		"A1 NO [X\r\n(((] t\r\n",
		"+ go on\r\n",
		"* 1 FETCH " + strings.Repeat("(", 200),
		"* 1 FETCH (BODY[] {10737418240}\r\n",
	} {
		f.Add([]byte(s), uint16(3))
	}
	f.Fuzz(func(t *testing.T, in []byte, cut uint16) {
		var whole, split imapLexer
		err := whole.scan(in)
		c := min(int(cut), len(in))
		err2 := split.scan(in[:c])
		if err2 == nil {
			err2 = split.scan(in[c:])
		}
		if (err == nil) != (err2 == nil) || (err == nil && whole != split) {
			t.Fatalf("cut at %d: %v / %v, %+v / %+v", c, err, err2, whole, split)
		}
		if err != nil && !errors.Is(err, errIMAPLimit) {
			t.Fatalf("error without the marker: %v", err)
		}
		if err == nil && (whole.depth > maxIMAPDepth || whole.line > maxIMAPLine || whole.size > maxIMAPLiteral) {
			t.Fatalf("past a bound: %+v", whole)
		}
		// Nesting counted by the lexer never falls behind a plain count of
		// "(" when the input has no quotes, literals or status text.
		if err == nil && !bytes.ContainsAny(in, "\"{\n[+") && bytes.HasPrefix(in, []byte("* 1 FETCH (")) {
			open := bytes.Count(in, []byte("(")) - bytes.Count(in, []byte(")"))
			if open > whole.depth && bytes.Count(in, []byte(")")) == 0 {
				t.Fatalf("depth %d, %d open", whole.depth, open)
			}
		}
	})
}

// BenchmarkIMAPLexer measures the guard's cost on a typical FETCH
// response: a BODYSTRUCTURE, header literals and a text literal.
func BenchmarkIMAPLexer(b *testing.B) {
	resp := []byte("* 1 FETCH (UID 7 RFC822.SIZE 5000 BODYSTRUCTURE " + nested(4) +
		" BODY[HEADER.FIELDS (FROM SENDER)]<0> {40}\r\n" + strings.Repeat("F", 40) +
		" BODY[1]<0> {4000}\r\n" + strings.Repeat("t", 4000) + ")\r\n")
	b.SetBytes(int64(len(resp)))
	var l imapLexer
	for b.Loop() {
		if err := l.scan(resp); err != nil {
			b.Fatal(err)
		}
		l.untagged = 0
	}
}
