package manifest

import (
	"fmt"
	"strings"
)

// Error is one problem in one document of one file.
type Error struct {
	File  string // as given to Decode; may be "-" for standard input
	Line  int    // 1-based; 0 if unknown
	Doc   int    // 1-based index of the document in the file
	Kind  string // may be empty when the document could not be read that far
	Name  string // namespace/name or name
	Field string // field path, e.g. spec.routes[0].httpRoute.action.weightedTargets[1].weight
	Msg   string // what is wrong and what was expected
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	b.WriteString(": ")
	if e.Kind != "" {
		b.WriteString(e.Kind)
		if e.Name != "" {
			b.WriteString(" " + e.Name)
		}
		b.WriteString(": ")
	} else {
		fmt.Fprintf(&b, "document %d: ", e.Doc)
	}
	if e.Field != "" {
		b.WriteString(e.Field + ": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Errors is every problem found in one input. An input with any error is applied not at all.
type Errors []*Error

func (l Errors) Error() string {
	s := make([]string, len(l))
	for i, e := range l {
		s[i] = e.Error()
	}
	return strings.Join(s, "\n")
}
