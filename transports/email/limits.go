package email

// Bounds on what one incoming mail may cost. A mail is remote input: the
// gateway reads only what it shows, decides what to fetch from the
// server's RFC822.SIZE and BODYSTRUCTURE, and keeps the chat message it
// builds well under the XMPP servers' default stanza limits (512 KiB for a
// component on Prosody), whatever the mail holds.
const (
	// maxBodyCap is the largest max_body an administrator may configure.
	maxBodyCap = 64 << 10
	// maxEscapedText bounds the chat message's text (body, subject, thread)
	// as XML-escaped bytes: a newline is written as six bytes. It leaves
	// room for the envelope under the gateway's default stanza bound
	// (xmpp.max_stanza_bytes, 64 KiB), which would otherwise cut the text
	// again, and this transport's note with it.
	maxEscapedText = 56 << 10

	// maxSenderHeader, maxSubjectHeader and maxMetaHeader bound the header
	// fields fetched: From and Sender; Subject; the ids and list markers.
	maxSenderHeader  = 4 << 10
	maxSubjectHeader = 8 << 10
	maxMetaHeader    = 16 << 10

	// maxSubject bounds the subject shown, in bytes.
	maxSubject = 400
	// maxMsgID bounds one Message-ID kept for threading; maxRefs the
	// references kept (the newest).
	maxMsgID = 250
	maxRefs  = 20

	// maxDepth and maxParts bound the walk over a mail's MIME structure;
	// parts beyond are counted, not examined.
	maxDepth = 32
	maxParts = 1000
	// maxListed attachments are named, each cut to maxNameLen bytes; the
	// rest are counted.
	maxListed  = 20
	maxNameLen = 100

	// maxHTMLFetch bounds the HTML fetched when a mail has no plain text.
	maxHTMLFetch = 256 << 10

	// maxStrikes is how many times one mail may fail (fetch or delivery)
	// before it is skipped with a notice to the user.
	maxStrikes = 3
)
