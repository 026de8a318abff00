package main

import (
	"strconv"
	"strings"
	"unicode"
)

// term makes text read from the store safe to print on the operator's
// terminal. Worker names come from miners: before authorize refused them
// they could hold escape sequences (ESC[31m, an OSC title ending in BEL),
// newlines or tabs that break tables, or Unicode format characters that
// reorder the line. Text made only of printable characters, without '"' or
// '\\', is printed as is; anything else is printed Go-quoted, so every byte
// is visible and the quoted form cannot be mistaken for a plain name.
func term(s string) string {
	for _, r := range s {
		if r == '"' || r == '\\' || r == utf8RuneError || !unicode.IsPrint(r) {
			return strconv.Quote(strings.ToValidUTF8(s, "\uFFFD"))
		}
	}
	return s
}

// utf8RuneError is what ranging over invalid UTF-8 yields.
const utf8RuneError = '\uFFFD'
