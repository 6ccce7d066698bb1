package keyvault

import (
	"cmp"
	"errors"
	"slices"
	"strconv"
)

// ParseError is one problem in a vault file. [Load] and [Parse] report every
// problem they find, joined with errors.Join, so use errors.As for the first
// one or unwrap the join (Unwrap() []error) for all of them. Messages say what
// to fix and never contain a secret; at most a prefix.
type ParseError struct {
	File    string // the vault file (a bad secret_file is named in Message)
	Line    int    // 1-based line in the vault file; 0 when not about a line
	Message string
	// Err is the underlying cause when there is one worth matching (the
	// fs error of an unreadable file, for errors.Is(err, fs.ErrNotExist)).
	Err error
}

// Error returns "FILE:LINE: MESSAGE" ("FILE: MESSAGE" when Line is 0).
func (e *ParseError) Error() string {
	if e.Line <= 0 {
		return e.File + ": " + e.Message
	}
	return e.File + ":" + strconv.Itoa(e.Line) + ": " + e.Message
}

// Unwrap returns the underlying cause, if any.
func (e *ParseError) Unwrap() error { return e.Err }

// Warning is something about a vault that loaded fine but that an operator
// should know, such as a key with no version valid now.
type Warning struct {
	File    string
	Line    int
	Message string
}

// String returns "FILE:LINE: MESSAGE", like [ParseError.Error].
func (w Warning) String() string {
	return (&ParseError{File: w.File, Line: w.Line, Message: w.Message}).Error()
}

// joinSorted orders problems by line (then message) so that reports are
// stable however the decoder's maps were iterated, and joins them.
func joinSorted(errs []*ParseError) error {
	if len(errs) == 0 {
		return nil
	}
	slices.SortStableFunc(errs, func(a, b *ParseError) int {
		return cmp.Or(cmp.Compare(a.Line, b.Line), cmp.Compare(a.Message, b.Message))
	})
	all := make([]error, len(errs))
	for i, e := range errs {
		all[i] = e
	}
	return errors.Join(all...)
}

// Problems flattens an error of Load (or a Watcher's reload) into its
// ParseErrors, one per problem, in order: for a page or report that lists
// them. An error that is not a ParseError becomes one with its text.
func Problems(err error) []*ParseError { return parseErrors(err) }
