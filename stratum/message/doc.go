// Package message holds the Stratum V1 wire format: newline-delimited
// JSON-RPC 1.0 requests, responses and server notifications, the method name
// constants, and a line reader with a maximum line length.
//
// It is pure encode/decode: it knows nothing about sessions, jobs or sockets
// beyond an io.Reader. Encoders append to a caller-supplied buffer so a
// mining.notify line can be built once per job and shared by every
// connection.
//
// Errors: Decode returns ErrMalformed (wrapped) for input that is not a JSON
// object with a string method; LineReader.ReadLine returns ErrLineTooLong when
// a line exceeds the configured maximum, and the reader's own errors (io.EOF)
// otherwise.
package message
